# Shared helpers: the preset's output directory and the package's plan of runs.
import json
import sys

from ali.config import results_dir

RESULTS = results_dir(config)
PRESET = config["preset"]
# Every shell command gets $ALI: the package's CLI run by the interpreter that runs Snakemake (so no
# PATH set-up is needed), after bash's strict mode (Snakemake's own default prefix).
shell.prefix(f"set -euo pipefail; ALI='{sys.executable} -m ali'; ")


def as_json(obj):
    """Compact JSON for a shell argument (quote it with {params.x:q})."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


wildcard_constraints:
    dataset="svhn|cifar10|celeba|tiny_imagenet|digits",
    imgmodel="ali|gan|vae",
    encmodel="ali|vae",
    seed=r"\d+",
    source="ali|vae|gan|raw",
    sslmodel="ali_kplus1|gan_fm",
    nlabels=r"\d+",
