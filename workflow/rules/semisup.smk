# K+1 semi-supervised learning: one GPU job per dataset x model x labels x seed, its test error,
# then results/semisup_runs.csv, results/table2.csv (its dataset's runs only) and the K+1 rows of
# results/table1.csv (their dataset and label count only).
from ali.experiments import semisup as ssl

SSL = f"{RESULTS}/semisup"
SSL_PLAN = ssl.plan(config)
SSL_GPUS = 0 if config["semisup"]["device"] == "cpu" else 1
SSL_DIRS = [f"{SSL}/{key}" for key in SSL_PLAN]


def ssl_data_flag(w):
    return [] if w.dataset in NO_DOWNLOAD else f"{DATA}/{w.dataset}.verified"


rule semisup_train:
    """One K+1 run (improved-gan's protocol). Resumes from its checkpoint; divergence is recorded."""
    output:
        record=f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/record.json",
    input:
        data=ssl_data_flag,
    params:
        spec=lambda w: as_json(SSL_PLAN[f"{w.dataset}/{w.sslmodel}/labels{w.nlabels}/seed{w.seed}"]),
        outdir=lambda w, output: os.path.dirname(output.record),
        device=config["semisup"]["device"],
        root=DATA,
    log:
        f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/train.log",
    threads: 4 if SSL_GPUS else 1
    resources:
        gpu=SSL_GPUS,
        mem_mb=32000 if SSL_GPUS else 4000,
        runtime=4320,
    shell:
        "$ALI train --spec {params.spec:q} --out {params.outdir} --data-root {params.root} "
        "--device {params.device} --threads {threads} 2> {log}"


rule semisup_evaluate:
    """Test error with the Polyak-averaged discriminator (and with the last weights, for reference)."""
    output:
        f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/metrics.json",
    input:
        record=f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/record.json",
        data=ssl_data_flag,
    params:
        rundir=lambda w, input: os.path.dirname(input.record),
        device=config["semisup"]["device"],
        root=DATA,
    log:
        f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/evaluate.log",
    threads: 1
    resources:
        gpu=SSL_GPUS,
    shell:
        "$ALI semisup-evaluate --run-dir {params.rundir} --out {output} --data-root {params.root} "
        "--device {params.device} 2> {log}"


def ssl_metrics(dataset=None, n_labels=None):
    return [f"{SSL}/{key}/metrics.json" for key, spec in SSL_PLAN.items()
            if (dataset is None or spec["dataset"] == dataset) and (n_labels is None or spec["n_labels"] == n_labels)]


SSL_T1 = config["semisup"]["table1"]


rule semisup_runs:
    """results/semisup_runs.csv: one row per dataset x model x labels x seed."""
    output:
        f"{RESULTS}/semisup_runs.csv",
    input:
        ssl_metrics(),
    params:
        dirs=lambda w, input: [os.path.dirname(m) for m in input],
    log:
        f"{RESULTS}/logs/semisup_runs.log",
    localrule: True
    shell:
        "$ALI semisup-report --run-dirs {params.dirs} --out-runs {output} 2> {log}"


rule table2:
    """results/table2.csv from the table2 dataset's runs only (CIFAR10 in the paper preset)."""
    output:
        f"{RESULTS}/table2.csv",
    input:
        ssl_metrics(config["semisup"]["table2_dataset"]),
    params:
        dirs=lambda w, input: [os.path.dirname(m) for m in input],
        dataset=config["semisup"]["table2_dataset"],
    log:
        f"{RESULTS}/logs/table2.log",
    localrule: True
    shell:
        "$ALI semisup-report --run-dirs {params.dirs} --out-table2 {output} --table2-dataset {params.dataset} "
        "2> {log}"


rule table1_kplus1_rows:
    """Table 1's K+1 rows (SVHN, 1,000 labels in the paper preset), appended to table1.csv."""
    output:
        f"{RESULTS}/semisup/table1_kplus1_rows.csv",
    input:
        ssl_metrics(SSL_T1["dataset"], SSL_T1["labels"]),
    params:
        dirs=lambda w, input: [os.path.dirname(m) for m in input],
        t1=SSL_T1,
    log:
        f"{RESULTS}/logs/table1_kplus1_rows.log",
    localrule: True
    shell:
        "$ALI semisup-report --run-dirs {params.dirs} --out-table1-rows {output} "
        "--table1-dataset {params.t1[dataset]} --table1-labels {params.t1[labels]} 2> {log}"
