# The ALI reproducibility workflow. Rules live in workflow/rules/*.smk; the science lives in the
# `ali` package, which every rule calls through its CLI.
#
#   snakemake --cores 8 results/mixture.csv                                  # paper preset
#   snakemake --cores 2 --configfile config/smoke.yaml results/smoke/mixture.csv   # smoke preset
#   snakemake --workflow-profile workflow/profiles/slurm results/mixture.csv # SLURM GPU nodes
#   snakemake --cores 8 mixture                                              # the mixture experiment alone
#   snakemake --cores 8 images                                               # every image run + figures
#   snakemake --cores 8 results/report.html                                  # everything, then the report page

import sys

from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/paper.yaml"


try:
    validate(config, "workflow/schemas/config.schema.yaml")
except Exception as error:  # first the one line that names the key, then Snakemake's full report
    from ali.config_errors import explain

    if explain(error):
        print(explain(error), file=sys.stderr)
    raise


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="|".join(sorted(DATASETS)),
    imgmodel="|".join(IMAGES.models),
    encmodel="ali|vae",
    seed=r"\d+",
    source="|".join(SVM_EXP.models),
    sslmodel="|".join(SEMISUP.models),
    nlabels=r"\d+",
    protocol="|".join(MIX_PROTOCOLS),
    mixmodel="|".join(MIX_MODELS),
    run=r"\d+",

include: "workflow/rules/mixture.smk"
include: "workflow/rules/images.smk"
include: "workflow/rules/svm.smk"
include: "workflow/rules/semisup.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        MIXTURE_TARGETS,
        IMAGES_TARGETS,
        f"{RESULTS}/table1.csv",
        f"{RESULTS}/table2.csv",
        f"{RESULTS}/semisup_runs.csv",
        f"{RESULTS}/report.html",


rule images:
    """Every unsupervised image run of the preset and its figures."""
    input:
        IMAGES_TARGETS,
        f"{RESULTS}/table1.csv",
        f"{RESULTS}/table2.csv",
        f"{RESULTS}/semisup_runs.csv",


rule mixture:
    """The mixture experiment alone: its tables and every Figure 8."""
    input:
        MIXTURE_TARGETS,
