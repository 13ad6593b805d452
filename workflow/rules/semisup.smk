# K+1 semi-supervised learning: one GPU job per dataset x model x labels x seed, its test error,
# then results/semisup_runs.csv and results/table2.csv (its dataset's runs only). Table 1's K+1 rows
# are written by the table1 rule (svm.smk) from the runs of its dataset and label count.


rule semisup_train:
    """One K+1 run (improved-gan's protocol). Resumes from its checkpoint; divergence is recorded."""
    output:
        record=f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/record.json",
    input:
        data=data_flag,
    params:
        spec=lambda w: as_json(SSL_PLAN[f"{w.dataset}/{w.sslmodel}/labels{w.nlabels}/seed{w.seed}"]),
        outdir=lambda w, output: run_dir(output.record),
        device=SSL_DEVICE,
        root=DATA,
        execution=execution_args(SEMISUP),
    log:
        f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/train.log",
    conda:
        ENV
    threads: 4 if gpus(SSL_DEVICE) else 1
    resources:
        gpu=gpus(SSL_DEVICE),
        mem_mb=32000 if gpus(SSL_DEVICE) else 4000,
        runtime=4320,
    shell:
        "$ALI train --spec {params.spec:q} --out {params.outdir} --data-root {params.root} "
        "--device {params.device} --threads {threads} {params.execution} 2> {log}"


rule semisup_evaluate:
    """Test error with the Polyak-averaged discriminator (and with the last weights, for reference)."""
    output:
        f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/metrics.json",
    input:
        record=f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/record.json",
        data=data_flag,
    params:
        rundir=lambda w, input: run_dir(input.record),
        device=SSL_DEVICE,
        root=DATA,
    log:
        f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/evaluate.log",
    conda:
        ENV
    threads: 1
    resources:
        gpu=gpus(SSL_DEVICE),
    shell:
        "$ALI evaluate --run-dir {params.rundir} --out {output} --data-root {params.root} "
        "--device {params.device} --threads {threads} 2> {log}"


rule semisup_runs:
    """results/semisup_runs.csv: one row per dataset x model x labels x seed."""
    output:
        f"{RESULTS}/semisup_runs.csv",
    input:
        [f"{d}/metrics.json" for d in ssl_runs()],
    params:
        inputs=in_args("runs", ssl_runs()),
    log:
        f"{RESULTS}/logs/semisup_runs.log",
    conda:
        ENV
    localrule: True
    shell:
        "$ALI report semisup-runs --in {params.inputs} --out runs={output} 2> {log}"


rule table2:
    """results/table2.csv from the table2 dataset's runs only (CIFAR10 in the paper preset)."""
    output:
        f"{RESULTS}/table2.csv",
    input:
        [f"{d}/metrics.json" for d in ssl_runs(config["semisup"]["table2_dataset"])],
    params:
        inputs=in_args("runs", ssl_runs(config["semisup"]["table2_dataset"])),
    log:
        f"{RESULTS}/logs/table2.log",
    conda:
        ENV
    localrule: True
    shell:
        "$ALI report table2 --in {params.inputs} --out table={output} 2> {log}"
