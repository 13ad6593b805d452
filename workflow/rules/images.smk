# Unsupervised ALI / GAN / VAE on images (appendix Tables 3-6): a local download rule per dataset
# (GPU nodes often have no internet, so no training job downloads), one GPU job per training run,
# then the samples, reconstructions and interpolation figures.
from ali.experiments import images as im

IMG = f"{RESULTS}/images"
FIG = f"{RESULTS}/figures"
DATA = config["data_dir"]
IMG_PLAN = im.plan(config)
IMG_GPUS = 0 if config["images"]["device"] == "cpu" else 1
IMG_FIGS = config["images"]["figures"]
NO_DOWNLOAD = ("digits",)  # ships with scikit-learn


def img_figures(key):
    s = IMG_PLAN[key]
    prefix = f"{FIG}/{s['dataset']}_{s['model']}_seed{s['seed']}"
    out = [f"{prefix}_samples.png"]
    if s["model"] != "gan":
        out += [f"{prefix}_reconstructions.png", f"{prefix}_interpolations.png"]
    return out


IMAGES_TARGETS = [f for key in IMG_PLAN for f in img_figures(key)]


def img_data_flag(w):
    return [] if w.dataset in NO_DOWNLOAD else f"{DATA}/{w.dataset}.verified"


rule download_data:
    """Download and verify one dataset (run on a machine with internet: it is a local rule)."""
    output:
        f"{DATA}/{{dataset}}.verified",
    params:
        root=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{DATA}/{{dataset}}.download.log",
    localrule: True
    shell:
        "$ALI download {wildcards.dataset} --root {params.root} --flag {output} 2> {log}"


rule images_train:
    """One image training run on one GPU. Resumes from its checkpoint; divergence is recorded."""
    output:
        record=f"{IMG}/{{dataset}}/{{imgmodel}}/seed{{seed}}/record.json",
    input:
        data=img_data_flag,
    params:
        spec=lambda w: as_json(IMG_PLAN[f"{w.dataset}/{w.imgmodel}/seed{w.seed}"]),
        outdir=lambda w, output: os.path.dirname(output.record),
        device=config["images"]["device"],
        root=DATA,
    log:
        f"{IMG}/{{dataset}}/{{imgmodel}}/seed{{seed}}/train.log",
    threads: 4 if IMG_GPUS else 1
    resources:
        gpu=IMG_GPUS,
        mem_mb=32000 if IMG_GPUS else 4000,
        runtime=2880,
    shell:
        "$ALI train --spec {params.spec:q} --out {params.outdir} --data-root {params.root} "
        "--device {params.device} --threads {threads} 2> {log}"


rule images_samples:
    """Samples from p(x | z), z ~ p(z) (Figures 2-5, left)."""
    output:
        f"{FIG}/{{dataset}}_{{imgmodel}}_seed{{seed}}_samples.png",
    input:
        f"{IMG}/{{dataset}}/{{imgmodel}}/seed{{seed}}/record.json",
    params:
        rundir=lambda w, input: os.path.dirname(input[0]),
        outdir=lambda w, output: os.path.dirname(output[0]),
        figs=IMG_FIGS,
    log:
        f"{FIG}/logs/{{dataset}}_{{imgmodel}}_seed{{seed}}_samples.log",
    threads: 1
    shell:
        "$ALI image-figures --kind samples --run-dir {params.rundir} --out-dir {params.outdir} "
        "--n-samples {params.figs[n_samples]} --seed {params.figs[seed]} 2> {log}"


rule images_inference_figures:
    """Held-out reconstructions (odd columns data, even reconstructions) and interpolations (Figure 6)."""
    output:
        recon=f"{FIG}/{{dataset}}_{{encmodel}}_seed{{seed}}_reconstructions.png",
        interp=f"{FIG}/{{dataset}}_{{encmodel}}_seed{{seed}}_interpolations.png",
    input:
        record=f"{IMG}/{{dataset}}/{{encmodel}}/seed{{seed}}/record.json",
        data=img_data_flag,
    params:
        rundir=lambda w, input: os.path.dirname(input.record),
        outdir=lambda w, output: os.path.dirname(output.recon),
        root=DATA,
        figs=IMG_FIGS,
    log:
        f"{FIG}/logs/{{dataset}}_{{encmodel}}_seed{{seed}}_inference.log",
    threads: 1
    shell:
        "$ALI image-figures --kind inference --run-dir {params.rundir} --out-dir {params.outdir} "
        "--data-root {params.root} --n-reconstructions {params.figs[n_reconstructions]} "
        "--n-interpolations {params.figs[n_interpolations]} "
        "--interpolation-steps {params.figs[interpolation_steps]} --seed {params.figs[seed]} 2> {log}"
