# Table 1, L2-SVM rows: features of every model and training seed (one job each), the released protocol
# on them (one job each), then results/svm_trials.csv and results/table1.csv (the L2-SVM rows, then the K+1 rows).


rule svm_features:
    """Pool / validation / test features of one model, in inference mode."""
    output:
        f"{SVM_DIR}/{{source}}/seed{{seed}}/features.pt",
    input:
        record=svm_image_run,
        data=svm_data_flag,
    params:
        spec=lambda w: as_json(SVM_PLAN[f"svm/{SVM_SETTINGS['dataset']}/{w.source}/seed{w.seed}"]),
        inputs=lambda w, input: f"--in run={run_dir(input.record)}" if input.record else "",
        outdir=lambda w, output: run_dir(output[0]),
        device=IMG_DEVICE,
        root=DATA,
    log:
        f"{SVM_DIR}/{{source}}/seed{{seed}}/features.log",
    conda:
        ENV
    threads: 4
    resources:
        gpu=gpus(IMG_DEVICE),
        mem_mb=32000,
        runtime=60,
    shell:
        "$ALI train --spec {params.spec:q} --out {params.outdir} {params.inputs} --data-root {params.root} "
        "--device {params.device} --threads {threads} 2> {log}"


rule svm_trials:
    """C on validation with one labelled draw, then the test error of n_trials fresh draws."""
    output:
        f"{SVM_DIR}/{{source}}/seed{{seed}}/metrics.json",
    input:
        f"{SVM_DIR}/{{source}}/seed{{seed}}/features.pt",
    params:
        rundir=lambda w, input: run_dir(input[0]),
        device=IMG_DEVICE,
    log:
        f"{SVM_DIR}/{{source}}/seed{{seed}}/trials.log",
    conda:
        ENV
    threads: 8
    resources:
        gpu=gpus(IMG_DEVICE),
        mem_mb=32000,
        runtime=240,
    shell:
        "$ALI evaluate --run-dir {params.rundir} --out {output} --device {params.device} "
        "--threads {threads} 2> {log}"


rule table1:
    """results/svm_trials.csv and results/table1.csv (the L2-SVM rows, then the K+1 rows)."""
    output:
        trials=f"{RESULTS}/svm_trials.csv",
        table=f"{RESULTS}/table1.csv",
    input:
        svm=[f"{RESULTS}/{key}/metrics.json" for key in SVM_PLAN],
        semisup=[f"{d}/metrics.json" for d in ssl_runs(SSL_T1["dataset"], SSL_T1["labels"])],
    params:
        inputs=lambda w, input: " ".join([in_args("svm", [run_dir(p) for p in input.svm]),
                                          in_args("semisup", [run_dir(p) for p in input.semisup])]),
    log:
        f"{RESULTS}/logs/table1.log",
    conda:
        ENV
    localrule: True
    shell:
        "$ALI report table1 --in {params.inputs} --out trials={output.trials} table={output.table} 2> {log}"
