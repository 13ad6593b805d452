"""What a target costs before it runs: steps / rate = device-hours, per Snakemake target and per run.

A *rate* is how fast one training job goes on a device kind (cpu or cuda) at a precision: run-steps/s
for the mixture (summed over the runs of a batched group), steps/s for image and K+1 runs, images/s
for SVM feature extraction. Rates come from ``results/rates/*.json`` (what ``ali doctor`` measured on
a device) when one is there for that device kind, else from :data:`BUILTIN`, where every entry says
where it came from and is labelled ``estimate`` where nothing here measured it.

The SLURM time limits of the workflow's training rules come from the same numbers
(:func:`runtime_minutes`), with a safety factor. No Snakemake in here: the rules import this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ali.config import ConfigError, get, results_dir
from ali.data.catalog import split_size
from ali.experiments.base import experiment, plan_all
from ali.train.files import read_json

DEVICES = ("cpu", "cuda")
RATES_DIR = Path("results/rates")
SAFETY = 3.0  # a SLURM limit is 3x the estimate (a loaded core runs the mixture at half the table's rate) ...
OVERHEAD_MIN = 15  # ... plus start-up, data loading, checkpoints and the curve's evaluations
UNKNOWN_MINUTES = 2880  # no rate for a run: the limit the rules asked before rates existed (48 h)


@dataclass(frozen=True)
class Rate:
    """Speed of one training job: ``value`` units per second (see the module docstring)."""

    experiment: str
    model: str
    device: str  # cpu | cuda
    value: float
    source: str  # where the number comes from; starts with "estimate" when nothing measured it
    arch: str = ""  # the appendix architecture (images, semisup); "" for the mixture and svm
    precision: str = "fp32"
    group_size: int = 1  # mixture: runs per job as one batched model
    batch_size: int = 100  # steps/s scale as 1/batch for image and K+1 runs

    def describe(self) -> str:
        what = f"{self.experiment} {self.model}" + (f" {self.arch}" if self.arch else "")
        group = f", group of {self.group_size}" if self.experiment == "mixture" else ""
        return f"{what}, {self.device} {self.precision}{group}: {self.value:,.4g} {UNITS[self.experiment]}"


UNITS = {"mixture": "run-steps/s", "images": "steps/s", "semisup": "steps/s", "svm": "images/s"}
COMMANDS = "1 thread, on a shared, loaded 2-core box, 2026-12-04: an estimate for any other CPU"
MIX_BENCH = f"measured: `python benchmarks/bench_mixture_step.py --model {{}} --sizes 1 10 --steps 10 --repeats 3`, {COMMANDS}"
IMG_BENCH = (f"measured: `python benchmarks/bench_image_step.py --device cpu --arch svhn cifar10 --steps 1 "
             f"--repeats 2` (eager fp32, default Adam, batch 100), {COMMANDS}")
H100_PROTOTYPE = ("estimate: issue 15's H100 figures for the captured group step (an independent batched "
                  "prototype reached 1,170 run-steps/s at 4 runs and 3,940 at 20, unfused and uncaptured; the "
                  "review puts this engine at 7,000-13,000 from 40 runs); no GPU has run it here")
GPU_IMAGES = ("estimate: 15% of an H100/H200's stated dense fp32 peak (67 TFLOP/s) over the step's FLOPs, as "
              "benchmarks/bench_image_step.py counts them; no GPU has run it here")
KPLUS1 = "estimate: 0.8 x the images {} step of the same architecture (the same nets plus a labelled batch)"
FEATURES = "estimate: 3 x the images/s of the images ALI step (svhn, {}): a forward pass of E alone"

# Image step FLOPs (GFLOP per step at batch 100, benchmarks/bench_image_step.py's count) -> GPU estimates.
IMAGE_GFLOP = {("svhn", "ali"): 100.7, ("svhn", "gan"): 78.2, ("svhn", "vae"): 48.1,
               ("cifar10", "ali"): 75.0, ("cifar10", "gan"): 54.6, ("cifar10", "vae"): 47.5}
# CPU steps/s at batch 100 (1 thread), measured as IMG_BENCH says.
IMAGE_CPU = {("svhn", "ali"): 0.645, ("svhn", "gan"): 1.006, ("svhn", "vae"): 1.808,
             ("cifar10", "ali"): 0.854, ("cifar10", "gan"): 1.289, ("cifar10", "vae"): 1.984}
GPU_FP32_FLOPS = 0.15 * 67e12


def _builtin() -> tuple[Rate, ...]:
    mix_cpu = {"ali": (89.41, 74.80), "gan": (92.35, 73.54)}  # run-steps/s at groups of 1 and 10
    rates = []
    for model, (g1, g10) in mix_cpu.items():
        rates += [Rate("mixture", model, "cpu", g1, MIX_BENCH.format(model)),
                  Rate("mixture", model, "cpu", g10, MIX_BENCH.format(model), group_size=10)]
    rates += [Rate("mixture", m, "cuda", v, H100_PROTOTYPE, group_size=g)
              for m in ("ali", "gan") for g, v in ((1, 800.0), (10, 3000.0), (40, 7000.0))]
    baselines = {"inverse": ("gan", 1.5), "posthoc": ("ali", 1.0), "vae": ("gan", 1.5)}
    for model, (like, factor) in baselines.items():
        note = (f"estimate: {factor:g} x a lone {like.upper()} run's rate on this device (no benchmark times this baseline; it "
                f"trains {'no discriminator' if model != 'posthoc' else 'E and D against a frozen G'})")
        for device, rate in (("cpu", mix_cpu[like][0]), ("cuda", 800.0)):
            rates.append(Rate("mixture", model, device, factor * rate, note))
    for (arch, model), gflop in IMAGE_GFLOP.items():
        rates.append(Rate("images", model, "cpu", IMAGE_CPU[arch, model], IMG_BENCH, arch=arch))
        rates.append(Rate("images", model, "cuda", GPU_FP32_FLOPS / (gflop * 1e9), GPU_IMAGES, arch=arch))
    for arch in ("svhn", "cifar10"):
        for model, like in (("ali_kplus1", "ali"), ("gan_fm", "gan")):
            for device in DEVICES:
                base = next(r for r in rates if (r.experiment, r.model, r.arch, r.device) == ("images", like, arch, device))
                rates.append(replace(base, experiment="semisup", model=model, value=0.8 * base.value,
                                     source=f"{KPLUS1.format(like.upper())}; that rate: {base.source}"))
    for device in DEVICES:
        ali_rate = next(r for r in rates if (r.experiment, r.model, r.arch, r.device) == ("images", "ali", "svhn", device))
        for source in ("ali", "vae", "gan"):
            rates.append(Rate("svm", source, device, 3 * 100 * ali_rate.value, FEATURES.format(device)))
        rates.append(Rate("svm", "raw", device, 1e5, "estimate: raw pixels are a copy"))
    return tuple(rates)


BUILTIN: tuple[Rate, ...] = _builtin()


# ------------------------------------------------------------------------------------ measured rates
def measured_rates(rates_dir: Path = RATES_DIR, device: str | None = None) -> list[Rate]:
    """The paper-scale rates of every ``<rates_dir>/*.json`` that ``ali doctor`` wrote (of one device kind)."""
    found = []
    for path in sorted(Path(rates_dir).glob("*.json")):
        doc = read_json(path, "measured rates", "delete it, or run `ali doctor` again to measure them afresh")
        if device is not None and doc.get("kind") != device:
            continue
        where = f"measured: {path} ({doc.get('device', '?')}, {doc.get('date', '?')}, code {doc.get('code_version', '?')})"
        for r in doc.get("rates", []):
            if r.get("scale") != "paper":
                continue
            found.append(Rate(r["experiment"], r["model"], doc["kind"], float(r["value"]), where,
                              arch=r.get("arch", ""), precision=r.get("precision", "fp32"),
                              group_size=int(r.get("group_size", 1)), batch_size=int(r.get("batch_size", 100))))
    return found


def rate_for(spec: Mapping, device: str, group_size: int = 1, rates: Sequence[Rate] = BUILTIN) -> Rate | None:
    """The rate of ``spec``'s job on ``device``: measured entries before built-in ones, its precision
    (else fp32's), the largest measured group size not above ``group_size`` (else the smallest);
    image and K+1 rates scaled to the spec's batch size. None if nothing fits."""
    arch = spec.get("arch", "") if spec["experiment"] in ("images", "semisup") else ""
    fits = [r for r in rates if (r.experiment, r.model, r.device, r.arch) == (spec["experiment"], spec["model"], device, arch)]
    precision = spec.get("precision", "fp32")
    same = [r for r in fits if r.precision == precision] or [r for r in fits if r.precision == "fp32"]
    if not same:
        return None
    below = [r for r in same if r.group_size <= group_size]
    size = max(r.group_size for r in below) if below else min(r.group_size for r in same)
    rate = next(r for r in same if r.group_size == size)  # measured ones come first
    batch = spec.get("batch_size", rate.batch_size)
    if spec["experiment"] in ("images", "semisup") and batch != rate.batch_size:
        rate = replace(rate, value=rate.value * rate.batch_size / batch, batch_size=batch,
                       source=f"{rate.source}; scaled to batch {batch}")
    if rate.precision != precision:
        rate = replace(rate, source=f"{rate.source}; the fp32 rate (none known for {precision})")
    return rate


def work(spec: Mapping) -> int:
    """Units of work of one run: training steps (mixture, images, semisup), images featurised (svm)."""
    if spec["experiment"] == "svm":
        return split_size(spec["dataset"], "train") + split_size(spec["dataset"], "test")
    return int(spec["steps"])


# ---------------------------------------------------------------------------------------- SLURM limits
def runtime_minutes(specs: Mapping | Sequence[Mapping], device: str, rates: Sequence[Rate] = BUILTIN) -> int:
    """A SLURM time limit (minutes) for one job training ``specs`` (one spec, or a group's) on ``device``
    (``auto`` asks for a GPU): SAFETY x the estimate + OVERHEAD_MIN; UNKNOWN_MINUTES without a rate."""
    group = [specs] if isinstance(specs, Mapping) else list(specs)
    kind = "cpu" if device == "cpu" else "cuda"
    rate = rate_for(group[0], kind, len(group), rates)
    if rate is None:
        return UNKNOWN_MINUTES
    seconds = sum(work(s) for s in group) / rate.value
    return math.ceil(OVERHEAD_MIN + SAFETY * seconds / 60)


# ----------------------------------------------------------------------------------- targets and jobs
def target_runs(cfg: Mapping) -> dict[str, list[str]]:
    """Every Snakemake target this module prices, with the training runs it needs (run keys of
    ``plan_all``): the DAG's upstream training runs, read from the experiments' plans and settings."""
    root = results_dir(cfg)
    mix, img, svm, ssl = (experiment(n).plan(cfg) for n in ("mixture", "images", "svm", "semisup"))
    s = experiment("svm").settings(cfg)
    feeds = [f"{s['dataset']}/{src}/seed{seed}" for src in s["sources"] if src != "raw" for seed in s["image_seeds"]]
    t1 = get(cfg, "semisup.table1", dict)
    t1_ssl = [k for k, v in ssl.items() if v["dataset"] == t1["dataset"] and v["n_labels"] == t1["labels"]]
    t2 = get(cfg, "semisup.table2_dataset", str)
    table1 = [k for k in feeds if k in img] + list(svm) + t1_ssl
    targets = {"mixture.csv": list(mix), "table1.csv": table1,
               "table2.csv": [k for k, v in ssl.items() if v["dataset"] == t2],
               "semisup_runs.csv": list(ssl), "figures": list(img),
               "report.html": list(mix) + list(img) + list(svm) + list(ssl)}
    return {f"{root}/{name}": keys for name, keys in targets.items()}


@dataclass(frozen=True)
class RunCost:
    key: str
    device: str
    group_size: int
    work: int
    rate: Rate | None

    @property
    def hours(self) -> float:
        return math.nan if self.rate is None else self.work / self.rate.value / 3600


def run_costs(cfg: Mapping, keys: Iterable[str], device: str | None = None,
              rates: Sequence[Rate] = BUILTIN) -> list[RunCost]:
    """Each run's cost on ``device`` (None: the device its experiment's config names; auto = cuda).
    Mixture ALI/GAN runs are priced at the group size their jobs would have on that device."""
    plan = plan_all(cfg)
    sizes: dict[str, dict[str, int]] = {}  # device kind -> {mixture run key: its job's group size}
    costs = []
    for key in keys:
        spec = plan[key]
        exp = spec["experiment"]
        dev = device or cfg.get("images" if exp == "svm" else exp, {}).get("device", "auto")
        dev = "cpu" if dev == "cpu" else "cuda"
        if exp == "mixture" and dev not in sizes:
            on_dev = {**cfg, "mixture": {**cfg["mixture"], "device": dev}}
            mixture = experiment("mixture")
            jobs = mixture.jobs(mixture.plan(on_dev), on_dev)  # which runs one job trains, on that device
            sizes[dev] = {k: len(members) for members in jobs.values() for k in members}
        size = sizes[dev].get(key, 1) if exp == "mixture" else 1
        costs.append(RunCost(key, dev, size, work(spec), rate_for(spec, dev, size, rates)))
    return costs


def all_rates(device: str | None, rates_dir: Path = RATES_DIR) -> list[Rate]:
    """Measured rates (of ``device``'s kind, or both) before the built-in table."""
    kinds = [device] if device else list(DEVICES)
    return [r for kind in kinds for r in measured_rates(rates_dir, kind)] + list(BUILTIN)


def cost_report(cfg: Mapping, targets: Sequence[str] | None = None, device: str | None = None,
                rates_dir: Path = RATES_DIR) -> str:
    """``ali plan --cost``: per target and per run the work, the rate and its source, and device-hours."""
    known = target_runs(cfg)
    targets = list(targets or [t for t in known if t.rsplit("/", 1)[-1] in ("mixture.csv", "table1.csv", "table2.csv")])
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise ConfigError(f"no cost known for target(s) {unknown}; known targets: {', '.join(known)}")
    rates = all_rates(device, rates_dir)
    sources: dict[str, int] = {}
    lines, seen = [], {}
    for target in targets:
        costs = run_costs(cfg, known[target], device, rates)
        lines.append(f"\n{target}: {len(costs)} runs, {_hours_text(costs)}")
        lines.append(f"  {'run':<36} {'device':<6} {'prec':<5} {'group':>5} {'steps':>11} {'rate':>10} "
                     f"{'unit':<12} {'hours':>8}  source")
        for c in costs:
            seen[c.key] = c
            if c.rate is None:
                lines.append(f"  {c.key:<36} {c.device:<6} {'-':<5} {c.group_size:>5} {c.work:>11,} {'-':>10} "
                             f"{'':<12} {'?':>8}  no rate known: run `ali doctor` on this device")
                continue
            ref = sources.setdefault(c.rate.source, len(sources) + 1)
            lines.append(f"  {c.key:<36} {c.device:<6} {c.rate.precision:<5} {c.group_size:>5} {c.work:>11,} "
                         f"{c.rate.value:>10,.4g} {UNITS[c.rate.experiment]:<12} {c.hours:>8.2f}  [{ref}]")
    head = [f"cost of {len(seen)} training runs (evaluation and reports not counted): "
            f"{_hours_text(list(seen.values()))}, each run counted once"]
    notes = ["\nrate sources:"] + [f"  [{i}] {src}" for src, i in sources.items()]
    return "\n".join(head + lines + notes)


def _hours_text(costs: Sequence[RunCost]) -> str:
    parts = []
    for dev, label in (("cuda", "GPU-hours"), ("cpu", "CPU-hours")):
        hours = [c.hours for c in costs if c.device == dev]
        if hours:
            known = sum(h for h in hours if not math.isnan(h))
            missing = sum(math.isnan(h) for h in hours)
            parts.append(f"{known:,.1f} {label}" + (f" (+{missing} runs without a rate)" if missing else ""))
    return ", ".join(parts) or "nothing to train"
