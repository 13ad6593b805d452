# Quick start on a fresh machine with python3, pip and make:
#   make smoke   # the whole workflow at smoke scale (generated mixture), outputs under results/smoke/
#   make test    # the test suite
#   make report  # results/smoke/report.html: the smoke run's numbers, verdicts, figures and curves, offline
# Both create the virtual environment .venv in this checkout on first use. After any interruption
# (Ctrl-C, kill -9, a power cut), the same target again finishes the work: Snakemake reads
# profiles/default/ by itself, which sets rerun-incomplete, and training resumes from its checkpoints.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
CORES ?= 2

.PHONY: setup smoke report test dryrun bench clean-smoke gpu-check

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[workflow,test]'
	touch $(STAMP)

smoke: $(STAMP)
	$(PY) -m snakemake --configfile=config/smoke.yaml --cores $(CORES)

# The smoke preset's report page (runs whatever of the smoke workflow it still needs first).
report: $(STAMP)
	$(PY) -m snakemake results/smoke/report.html --configfile=config/smoke.yaml --cores $(CORES)

test: $(STAMP)
	$(PY) -m pytest -q

dryrun: $(STAMP)
	$(PY) -m snakemake results/mixture.csv -n --cores 8

bench: $(STAMP)
	$(PY) benchmarks/bench_mixture_step.py
	$(PY) benchmarks/bench_image_step.py
	$(PY) benchmarks/bench_svm.py

# The self-check on a new (GPU) box: every path through the CLI, then the benchmarks; at most ~8 min on
# one H100/H200. Needs only PyTorch, torchvision, numpy, scikit-learn, pandas, matplotlib, PyYAML (no .venv, no
# install): it runs the .venv's python if there is one, else python3. Writes results/rates/<device>.json.
gpu-check:
	PYTHONPATH=. $(if $(wildcard $(PY)),$(PY),python3) -m ali doctor

clean-smoke:
	rm -rf results/smoke
