# K+1 semi-supervised learning: one GPU job per dataset x model x labels x seed, its test error,
# then results/semisup_runs.csv, results/table2.csv and the K+1 rows of results/table1.csv.
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
    log:
        f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/train.log",
    threads: 4 if SSL_GPUS else 1
    resources:
        gpu=SSL_GPUS,
        mem_mb=32000 if SSL_GPUS else 4000,
        runtime=4320,
    shell:
        "{ALI} train --spec {params.spec:q} --out {params.outdir} --data-root {DATA} "
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
    log:
        f"{SSL}/{{dataset}}/{{sslmodel}}/labels{{nlabels}}/seed{{seed}}/evaluate.log",
    threads: 1
    resources:
        gpu=SSL_GPUS,
    shell:
        "{ALI} semisup-evaluate --run-dir {params.rundir} --out {output} --data-root {DATA} 2> {log}"


rule semisup_report:
    """results/semisup_runs.csv, results/table2.csv and the K+1 rows for table1.csv."""
    output:
        runs=f"{RESULTS}/semisup_runs.csv",
        table2=f"{RESULTS}/table2.csv",
        table1_rows=f"{RESULTS}/semisup/table1_kplus1_rows.csv",
    input:
        [f"{d}/metrics.json" for d in SSL_DIRS],
    params:
        dirs=SSL_DIRS,
        t2=config["semisup"]["table2_dataset"],
        t1=config["semisup"]["table1"],
    log:
        f"{RESULTS}/logs/semisup_report.log",
    localrule: True
    shell:
        "{ALI} semisup-report --run-dirs {params.dirs} --out-runs {output.runs} --out-table2 {output.table2} "
        "--out-table1-rows {output.table1_rows} --table2-dataset {params.t2} "
        "--table1-dataset {params.t1[dataset]} --table1-labels {params.t1[labels]} 2> {log}"
