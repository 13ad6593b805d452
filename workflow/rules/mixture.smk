# The 25-mode mixture (paper section 4.5): one job per training run, then evaluation, the choice of
# the best-covering runs, the inference baselines on the best GAN, the tables and Figure 8.


rule mixture_train:
    """One training run. Resumes from its checkpoint when re-run; a diverged run is recorded, not failed."""
    wildcard_constraints:
        mixmodel="|".join(MIX_SOLO_MODELS),
    output:
        record=f"{MIX}/{{protocol}}/{{mixmodel}}/run{{run}}/record.json",
    input:
        unpack(lambda w: upstream(MIXTURE, MIX_PLAN[mix_key(w)])),
    params:
        spec=lambda w: as_json(MIX_PLAN[mix_key(w)]),
        inputs=lambda w: upstream_args(MIXTURE, MIX_PLAN[mix_key(w)]),
        outdir=lambda w, output: run_dir(output.record),
        device=MIX_DEVICE,
        execution=execution_args(MIXTURE),
    log:
        f"{MIX}/{{protocol}}/{{mixmodel}}/run{{run}}/train.log",
    conda:
        ENV
    threads: 1
    resources:
        gpu=gpus(MIX_DEVICE),
        mem_mb=3000,
        runtime=lambda w: runtime_minutes(MIX_PLAN[f"{w.protocol}/{w.mixmodel}/run{w.run}"], MIX_DEVICE),
    shell:
        "$ALI train --spec {params.spec:q} --out {params.outdir} {params.inputs} "
        "--device {params.device} --threads {threads} {params.execution} 2> {log}"


for group, members in MIX_GROUPS.items():  # a job's outputs are its runs' records: one rule per group job

    rule:
        """Several ALI (or GAN) runs of one protocol as one run-batched model (mixture.group_size)."""
        name:
            group_rule_name(MIXTURE, group)
        output:
            [f"{MIX}/{k}/record.json" for k in members],
        params:
            spec=as_json([MIX_PLAN[k] for k in members]),
            outdirs=[f"{MIX}/{k}" for k in members],
            device=MIX_DEVICE,
            execution=execution_args(MIXTURE),
        log:
            f"{MIX}/{group}.train.log",
        conda:
            ENV
        threads: 1 if MIX_DEVICE == "cpu" else 4
        resources:
            gpu=gpus(MIX_DEVICE),
            mem_mb=3000 + 200 * len(members),
            runtime=runtime_minutes([MIX_PLAN[k] for k in members], MIX_DEVICE),
        shell:
            "$ALI train --spec {params.spec:q} --out {params.outdirs} --device {params.device} "
            "--threads {threads} {params.execution} 2> {log}"


rule mixture_evaluate:
    """Mode coverage of 10,000 / 2,500 samples; inference metrics on the held-out set."""
    output:
        f"{MIX}/{{protocol}}/{{mixmodel}}/run{{run}}/metrics.json",
    input:
        f"{MIX}/{{protocol}}/{{mixmodel}}/run{{run}}/record.json",
    params:
        settings=as_json(MIXTURE.settings(config)),
        rundir=lambda w, input: run_dir(input[0]),
    log:
        f"{MIX}/{{protocol}}/{{mixmodel}}/run{{run}}/evaluate.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "$ALI evaluate --run-dir {params.rundir} --settings {params.settings:q} --out {output} "
        "--threads {threads} 2> {log}"


rule mixture_best:
    """The best-covering ALI and GAN runs of one protocol (the baselines train on that GAN)."""
    output:
        f"{MIX}/{{protocol}}/best.json",
    input:
        lambda w: [f"{MIX}/{k}/metrics.json" for k in mix_keys(w.protocol, MIXTURE.base_models)],
    params:
        inputs=lambda w, input: in_args("metrics", input),
    log:
        f"{MIX}/{{protocol}}/best.log",
    conda:
        ENV
    localrule: True
    shell:
        "$ALI report best --in {params.inputs} --out best={output} 2> {log}"


rule mixture_report:
    """results/mixture_runs.csv (one row per run) and results/mixture.csv (one per protocol x model)."""
    output:
        runs=f"{RESULTS}/mixture_runs.csv",
        table=f"{RESULTS}/mixture.csv",
    input:
        [f"{MIX}/{k}/metrics.json" for k in MIX_PLAN],
    params:
        inputs=in_args("runs", [f"{MIX}/{k}" for k in MIX_PLAN]),
    log:
        f"{RESULTS}/logs/mixture_report.log",
    conda:
        ENV
    localrule: True
    shell:
        "$ALI report mixture-tables --in {params.inputs} --out runs={output.runs} table={output.table} 2> {log}"


rule mixture_figure8:
    """Figure 8 for one protocol: rows data, latents, reconstructions, prior, samples; a column per
    model (the paper's four, then each plug-in model's best run)."""
    output:
        f"{RESULTS}/figure8_{{protocol}}.png",
    input:
        best=f"{MIX}/{{protocol}}/best.json",
        baselines=figure8_baselines,
        plugins=figure8_plugins,
    params:
        inputs=lambda w, input: " ".join([in_args("best", input.best),
                                          in_args("baselines", [run_dir(r) for r in input.baselines]),
                                          in_args("plugins", input.plugins)]),
    log:
        f"{RESULTS}/logs/figure8_{{protocol}}.log",
    conda:
        ENV
    shell:
        "$ALI report figure8 --in {params.inputs} --out figure={output} 2> {log}"


rule mixture_figure8_main:
    """results/figure8.png: the protocol named by mixture.figure_protocol (the paper's: random)."""
    output:
        f"{RESULTS}/figure8.png",
    input:
        f"{RESULTS}/figure8_{config['mixture']['figure_protocol']}.png",
    log:
        f"{RESULTS}/logs/figure8.log",
    conda:
        ENV
    localrule: True
    shell:
        "cp {input} {output} 2> {log}"
