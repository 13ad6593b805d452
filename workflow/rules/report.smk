# The report page: one self-contained HTML file per preset (results/report.html, results/smoke/report.html)
# with every published number beside ours and a computed verdict, the figures, training curves and
# provenance. It reads only the tables and figures below (and each run's history.csv, if any).

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
        python=sys.executable,
        results=lambda w, output: os.path.dirname(output[0]),
        preset=PRESET,
    log:
        f"{RESULTS}/logs/report.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "{params.python} -m ali.report.page --results {params.results} --out {output} --preset {params.preset} "
        "2> {log}"
