# The 25-mode mixture (paper section 4.5): one job per training run, then evaluation, the choice of
# the best-covering runs, the inference baselines on the best GAN, the tables and Figure 8.
from ali.experiments import mixture as mx

MIX = f"{RESULTS}/mixture"
MIX_PLAN = mx.plan(config)
MIX_EVAL = mx.eval_settings(config)
MIX_PROTOCOLS = list(config["mixture"]["protocols"])
MIX_DEVICE = config["mixture"]["device"]
MIX_GPUS = 0 if MIX_DEVICE == "cpu" else 1


def mix_dir(key):
    return f"{MIX}/{key}"


def mix_keys(protocol=None, models=None):
    return [k for k, s in MIX_PLAN.items()
            if (protocol is None or s["protocol"] == protocol) and (models is None or s["model"] in models)]


MIXTURE_TARGETS = [
    f"{RESULTS}/mixture.csv",
    f"{RESULTS}/mixture_runs.csv",
    f"{RESULTS}/figure8.png",
] + [f"{RESULTS}/figure8_{p}.png" for p in MIX_PROTOCOLS]


wildcard_constraints:
    protocol="|".join(MIX_PROTOCOLS),
    mixmodel="|".join(mx.BASE_MODELS + mx.BASELINES),
    run=r"\d+",


rule mixture_train:
    """One training run. Resumes from its checkpoint when re-run; a diverged run is recorded, not failed."""
    output:
        record=f"{MIX}/{{protocol}}/{{mixmodel}}/run{{run}}/record.json",
    input:
        best=lambda w: f"{MIX}/{w.protocol}/best.json" if w.mixmodel in mx.NEEDS_SOURCE else [],
    params:
        spec=lambda w: as_json(MIX_PLAN[f"{w.protocol}/{w.mixmodel}/run{w.run}"]),
        best=lambda w, input: f"--best {input.best}" if input.best else "",
        outdir=lambda w, output: os.path.dirname(output.record),
        device=MIX_DEVICE,
    log:
        f"{MIX}/{{protocol}}/{{mixmodel}}/run{{run}}/train.log",
    threads: 1
    resources:
        gpu=MIX_GPUS,
        mem_mb=3000,
        runtime=150,
    shell:
        "$ALI train --spec {params.spec:q} --out {params.outdir} {params.best} "
        "--device {params.device} --threads {threads} 2> {log}"


rule mixture_evaluate:
    """Mode coverage of 10,000 / 2,500 samples; inference metrics on the held-out set."""
    output:
        f"{MIX}/{{protocol}}/{{mixmodel}}/run{{run}}/metrics.json",
    input:
        f"{MIX}/{{protocol}}/{{mixmodel}}/run{{run}}/record.json",
    params:
        eval=as_json(MIX_EVAL),
        rundir=lambda w, input: os.path.dirname(input[0]),
    log:
        f"{MIX}/{{protocol}}/{{mixmodel}}/run{{run}}/evaluate.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "$ALI evaluate --run-dir {params.rundir} --eval {params.eval:q} --out {output} --threads {threads} 2> {log}"


rule mixture_best:
    """The best-covering ALI and GAN runs of one protocol (the baselines train on that GAN)."""
    output:
        f"{MIX}/{{protocol}}/best.json",
    input:
        lambda w: [f"{mix_dir(k)}/metrics.json" for k in mix_keys(w.protocol, mx.BASE_MODELS)],
    log:
        f"{MIX}/{{protocol}}/best.log",
    localrule: True
    shell:
        "$ALI best --metrics {input} --out {output} 2> {log}"


rule mixture_report:
    """results/mixture_runs.csv (one row per run) and results/mixture.csv (one per protocol x model)."""
    output:
        runs=f"{RESULTS}/mixture_runs.csv",
        table=f"{RESULTS}/mixture.csv",
    input:
        [f"{mix_dir(k)}/metrics.json" for k in MIX_PLAN],
    params:
        dirs=[mix_dir(k) for k in MIX_PLAN],
    log:
        f"{RESULTS}/logs/mixture_report.log",
    localrule: True
    shell:
        "$ALI mixture-report --run-dirs {params.dirs} --out-runs {output.runs} --out-table {output.table} 2> {log}"


def figure8_inputs(w):
    baselines = [k for k in mix_keys(w.protocol, mx.BASELINES)]
    return {"best": f"{MIX}/{w.protocol}/best.json",
            "records": [f"{mix_dir(k)}/record.json" for k in baselines]}


rule mixture_figure8:
    """Figure 8 for one protocol: rows data, latents, reconstructions, prior, samples."""
    output:
        f"{RESULTS}/figure8_{{protocol}}.png",
    input:
        unpack(figure8_inputs),
    params:
        dirs=lambda w, input: [os.path.dirname(r) for r in input.records],
        title=lambda w: f"Figure 8, {w.protocol} protocol ({PRESET} preset)",
    log:
        f"{RESULTS}/logs/figure8_{{protocol}}.log",
    shell:
        "$ALI figure8 --best {input.best} --baselines {params.dirs} --out {output} --title {params.title:q} 2> {log}"


rule mixture_figure8_main:
    """results/figure8.png: the protocol named by mixture.figure_protocol (the paper's: random)."""
    output:
        f"{RESULTS}/figure8.png",
    input:
        f"{RESULTS}/figure8_{config['mixture']['figure_protocol']}.png",
    log:
        f"{RESULTS}/logs/figure8.log",
    localrule: True
    shell:
        "cp {input} {output} 2> {log}"
