# Unsupervised ALI / GAN / VAE on images (appendix Tables 3-6): a local download rule per dataset
# (GPU nodes often have no internet, so no training job downloads), one GPU job per training run,
# then the samples, reconstructions and interpolation figures.


rule download_data:
    """Download and verify one dataset (run on a machine with internet: it is a local rule)."""
    output:
        f"{DATA}/{{dataset}}.verified",
    params:
        root=lambda w, output: run_dir(output[0]),
    log:
        f"{DATA}/{{dataset}}.download.log",
    conda:
        ENV
    localrule: True
    shell:
        "$ALI download {wildcards.dataset} --root {params.root} --flag {output} 2> {log}"


rule images_train:
    """One image training run on one GPU. Resumes from its checkpoint; divergence is recorded."""
    output:
        record=f"{IMG}/{{dataset}}/{{imgmodel}}/seed{{seed}}/record.json",
    input:
        data=data_flag,
    params:
        spec=lambda w: as_json(IMG_PLAN[f"{w.dataset}/{w.imgmodel}/seed{w.seed}"]),
        outdir=lambda w, output: run_dir(output.record),
        device=IMG_DEVICE,
        root=DATA,
        execution=execution_args(IMAGES),
    log:
        f"{IMG}/{{dataset}}/{{imgmodel}}/seed{{seed}}/train.log",
    conda:
        ENV
    threads: 4 if gpus(IMG_DEVICE) else 1
    resources:
        gpu=gpus(IMG_DEVICE),
        mem_mb=32000 if gpus(IMG_DEVICE) else 4000,
        runtime=2880,
    shell:
        "$ALI train --spec {params.spec:q} --out {params.outdir} --data-root {params.root} "
        "--device {params.device} --threads {threads} {params.execution} 2> {log}"


rule images_samples:
    """Samples from p(x | z), z ~ p(z) (Figures 2-5, left)."""
    output:
        f"{FIG}/{{dataset}}_{{imgmodel}}_seed{{seed}}_samples.png",
    input:
        f"{IMG}/{{dataset}}/{{imgmodel}}/seed{{seed}}/record.json",
    params:
        rundir=lambda w, input: run_dir(input[0]),
        settings=as_json(IMAGES.settings(config)),
    log:
        f"{FIG}/logs/{{dataset}}_{{imgmodel}}_seed{{seed}}_samples.log",
    conda:
        ENV
    threads: 1
    shell:
        "$ALI report image-figures --in run={params.rundir} --out samples={output} "
        "--settings {params.settings:q} 2> {log}"


rule images_inference_figures:
    """Held-out reconstructions (odd columns data, even reconstructions) and interpolations (Figure 6)."""
    output:
        recon=f"{FIG}/{{dataset}}_{{encmodel}}_seed{{seed}}_reconstructions.png",
        interp=f"{FIG}/{{dataset}}_{{encmodel}}_seed{{seed}}_interpolations.png",
    input:
        record=f"{IMG}/{{dataset}}/{{encmodel}}/seed{{seed}}/record.json",
        data=data_flag,
    params:
        rundir=lambda w, input: run_dir(input.record),
        root=DATA,
        settings=as_json(IMAGES.settings(config)),
    log:
        f"{FIG}/logs/{{dataset}}_{{encmodel}}_seed{{seed}}_inference.log",
    conda:
        ENV
    threads: 1
    shell:
        "$ALI report image-figures --in run={params.rundir} --out reconstructions={output.recon} "
        "interpolations={output.interp} --data-root {params.root} --settings {params.settings:q} 2> {log}"
