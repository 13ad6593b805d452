# The report page: one self-contained HTML file per preset (results/report.html, results/smoke/report.html)
# with every published number beside ours and a computed verdict, the figures, training curves and
# provenance. It reads only the tables and figures below (and each run's history.csv, if any).
# results/published/ (paper-scale protocols committed to the repository, `ali report publish`) is
# passed as a parameter, never an input: its timestamps after a checkout can make nothing retrain.
PUBLISHED = "results/published"

REPORT_INPUTS = MIXTURE_TARGETS + IMAGES_TARGETS + [
    f"{RESULTS}/svm_trials.csv",
    f"{RESULTS}/table1.csv",
    f"{RESULTS}/semisup_runs.csv",
    f"{RESULTS}/table2.csv",
]


rule report:
    """results/report.html: the verdict table, Figure 8, image figures, curves and provenance, offline."""
    output:
        f"{RESULTS}/report.html",
    input:
        REPORT_INPUTS,
    params:
        results=lambda w, output: run_dir(output[0]),
        settings=as_json({"preset": PRESET}),
        published=f" published={PUBLISHED}" if os.path.isdir(PUBLISHED) else "",
    log:
        f"{RESULTS}/logs/report.log",
    localrule: True
    conda:
        ENV
    shell:
        "$ALI report page --in results={params.results}{params.published} --out page={output} --settings {params.settings:q} 2> {log}"
