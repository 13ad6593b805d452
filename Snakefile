# The ALI reproducibility workflow. Rules live in workflow/rules/*.smk; the science lives in the
# `ali` package, which every rule calls through its CLI. Targets first, then options; another preset
# goes in as --configfile=FILE (with "=": without it the option swallows the words after it).
#
#   snakemake results/mixture.csv --cores 8                                    # paper preset
#   snakemake results/smoke/mixture.csv --configfile=config/smoke.yaml --cores 2   # smoke preset
#   snakemake results/mixture.csv --workflow-profile workflow/profiles/slurm   # SLURM nodes
#   snakemake mixture --cores 8                       # the mixture experiment alone: tables, Figure 8
#   snakemake images --cores 8                        # the unsupervised image runs and their figures
#   snakemake results/report.html --cores 8           # everything, then the report page
#
# After any interruption (Ctrl-C, kill -9, a power cut) the same command again finishes the workflow:
# profiles/default/ (read by Snakemake by itself) sets rerun-incomplete, and the lock below clears the
# locks Snakemake leaves behind when it is killed.

import fcntl
import os
import shutil
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/paper.yaml"


# A run killed by SIGKILL or a power cut leaves .snakemake/locks/ behind, and the next run would refuse
# to start until --unlock. Every main run of this workflow holds an OS lock on .snakemake/run.lock while
# it lives (the kernel drops it when the process dies, however it dies), so a run that gets that lock
# knows no other run is alive here and that any Snakemake lock left is stale.
if workflow.is_main_process:
    os.makedirs(".snakemake", exist_ok=True)
    RUN_LOCK = os.open(".snakemake/run.lock", os.O_RDWR | os.O_CREAT, 0o644)  # held until this run ends
    try:
        fcntl.flock(RUN_LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
        shutil.rmtree(".snakemake/locks", ignore_errors=True)
    except BlockingIOError:  # another run of this workflow is alive: its locks stand
        pass


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
    """Every unsupervised image run of the preset and its figures (Table 1's L2-SVM and the K+1 runs are
    results/table1.csv and results/table2.csv)."""
    input:
        IMAGES_TARGETS,


rule mixture:
    """The mixture experiment alone: its tables and every Figure 8."""
    input:
        MIXTURE_TARGETS,
