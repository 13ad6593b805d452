# Table 1, L2-SVM rows: features of every model (one job each), the released protocol on them (one
# job each), then results/svm_trials.csv and the L2-SVM rows of results/table1.csv.
from ali.experiments import svm as sv

SVM = sv.settings(config)
SVM_DIR = f"{RESULTS}/svm/{SVM['dataset']}"
SVM_GPUS = 0 if config["images"]["device"] == "cpu" else 1


def svm_run_record(w):
    if w.source == "raw":
        return []
    return f"{IMG}/{SVM['dataset']}/{w.source}/seed{SVM['image_seed']}/record.json"


def svm_data_flag(w):
    return [] if SVM["dataset"] in NO_DOWNLOAD else f"{DATA}/{SVM['dataset']}.verified"


rule svm_features:
    """Pool / validation / test features of one model, in inference mode."""
    output:
        f"{SVM_DIR}/{{source}}/features.pt",
    input:
        record=svm_run_record,
        data=svm_data_flag,
    params:
        settings=as_json(SVM),
        rundir=lambda w, input: f"--run-dir {os.path.dirname(input.record)}" if input.record else "",
        root=DATA,
    log:
        f"{SVM_DIR}/{{source}}/features.log",
    threads: 4
    resources:
        gpu=SVM_GPUS,
        mem_mb=32000,
        runtime=60,
    shell:
        "$ALI svm-features --source {wildcards.source} {params.rundir} --out {output} "
        "--settings {params.settings:q} --data-root {params.root} --threads {threads} 2> {log}"


rule svm_trials:
    """C on validation with one labelled draw, then the test error of n_trials fresh draws."""
    output:
        f"{SVM_DIR}/{{source}}/trials.json",
    input:
        f"{SVM_DIR}/{{source}}/features.pt",
    params:
        settings=as_json(SVM),
    log:
        f"{SVM_DIR}/{{source}}/trials.log",
    threads: 8
    resources:
        gpu=SVM_GPUS,
        mem_mb=32000,
        runtime=240,
    shell:
        "$ALI svm-trials --features {input} --out {output} --settings {params.settings:q} "
        "--threads {threads} 2> {log}"


rule table1:
    """results/svm_trials.csv and results/table1.csv (the L2-SVM rows, then the K+1 rows)."""
    output:
        trials=f"{RESULTS}/svm_trials.csv",
        table=f"{RESULTS}/table1.csv",
    input:
        svm=expand(f"{SVM_DIR}/{{source}}/trials.json", source=SVM["sources"]),
        kplus1=f"{RESULTS}/semisup/table1_kplus1_rows.csv",
    log:
        f"{RESULTS}/logs/table1.log",
    localrule: True
    shell:
        "$ALI table1 --svm {input.svm} --extra-rows {input.kplus1} --out-trials {output.trials} "
        "--out-table {output.table} 2> {log}"
