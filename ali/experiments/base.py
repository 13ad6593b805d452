"""The experiment contract: every experiment has the same shape, from config to table row.

    config ─▶ plan(cfg) ─▶ {key: run spec}            (typed dataclass, stored as JSON and hashed)
           ─▶ jobs(plan, cfg) ─▶ {job: [run keys]}   (which runs one training job trains)
           ─▶ train_run(spec, run_dir, ctx)           (run_dir/record.json, model or features)
           ─▶ evaluate_run(run_dir, settings, ctx)    (a dict of metrics, written as JSON)
           ─▶ rows(run_dir) ─▶ report functions       (tidy rows, then group-bys + published numbers)

An experiment subclasses :class:`Experiment` and registers itself with :func:`register`; the CLI
(``ali plan/train/evaluate/report``) and the workflow look experiments up by name and never branch
on them. A run spec records ``experiment``, so a run directory alone says how to evaluate it.
A spec holds what determines a run's numbers and nothing else: how a run executes (device, threads,
CUDA-graph capture, memory layout) travels in the :class:`RunContext`, so it never changes a hash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ali.config import ConfigError, get
from ali.models.base import StepOptions
from ali.nets.architectures import ARCHITECTURES, Architecture, architecture
from ali.train import files
from ali.train.files import write_text


@dataclass(frozen=True)
class RunSpec:
    """What determines one run's numbers. Subclasses add their fields; JSON is the stored form.

    A field named in ``omit_if_none`` is left out of the JSON when it is None (a field only some
    models have), so a spec stores exactly the keys its run uses.
    """

    omit_if_none: ClassVar[tuple[str, ...]] = ()

    experiment: str
    preset: str
    model: str
    seed: int

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not (v is None and k in self.omit_if_none)}


@dataclass
class RunContext:
    """How a run is executed (never part of its spec or hash): device, threads, CUDA-graph capture,
    memory layout, paths, cadence, inputs. ``capture`` and ``channels_last`` come from the config's
    ``<experiment>.capture`` / ``.channels_last`` (``Experiment.execution``) or the CLI's flags."""

    device: str = "auto"
    threads: int = 1
    capture: str = "auto"  # auto | on | off: the whole training step as one CUDA graph (auto: on CUDA)
    channels_last: bool = False  # 4-d weights and image batches in NHWC layout (image models)
    data_root: Path = Path("data")
    checkpoint_every: int | None = None  # None: the experiment's default
    log_every: int | None = None
    progress: bool = True
    stop_at: int | None = None  # simulate a killed job after this step (tests)
    inputs: dict[str, list[Path]] = field(default_factory=dict)  # named upstream files (--in NAME=PATH)

    def loop_options(self, exp: "Experiment", steps: int | None = None) -> dict:
        """The training loop's keyword arguments, with the experiment's cadence where none is given.

        The default history cadence is the experiment's, shortened for a run of ``steps`` so that its
        history.csv has at least ``MIN_HISTORY_ROWS`` rows (a curve at any scale). Logging averages the
        losses and checks them; it draws no random numbers and changes no weight.
        """
        return {"device": self.device, "checkpoint_every": self.checkpoint_every or exp.checkpoint_every,
                "log_every": self.log_every or history_interval(exp.log_every, steps), "progress": self.progress,
                "stop_at": self.stop_at}

    def step_options(self, spec: Mapping) -> StepOptions:
        """How a run's step executes: the spec's precision with this context's capture and layout."""
        return StepOptions.from_spec(spec, capture=self.capture, channels_last=self.channels_last)

    def input(self, name: str) -> Path | None:
        """The single upstream file registered as ``name``, or None."""
        paths = self.inputs.get(name, [])
        if len(paths) > 1:
            raise ValueError(f"input {name!r} was given {len(paths)} times; expected one path")
        return paths[0] if paths else None


MIN_HISTORY_ROWS = 10


def history_interval(configured: int, steps: int | None) -> int:
    """``configured``, or less for a short run: min(configured, steps // MIN_HISTORY_ROWS), at least 1."""
    return configured if not steps else max(1, min(configured, steps // MIN_HISTORY_ROWS))


# A report turns upstream files into outputs: (inputs by name, outputs by name, settings, context).
ReportFn = Callable[[dict[str, list[Path]], dict[str, Path], Mapping, RunContext], None]


class Experiment:
    """Base class of the four experiments (mixture, images, svm, semisup)."""

    name: ClassVar[str]
    spec_type: ClassVar[type[RunSpec]]  # the typed spec every entry of plan() is the JSON form of
    models: ClassVar[tuple[str, ...]]
    reports: ClassVar[dict[str, tuple[str, str]]] = {}  # report name -> (method name, one-line help)
    checkpoint_every: ClassVar[int] = 2000
    log_every: ClassVar[int] = 100

    def plan(self, cfg: Mapping) -> dict[str, dict]:
        """Every run the config defines: ``{run key: spec as a JSON-able dict}``."""
        raise NotImplementedError

    def jobs(self, plan: Mapping[str, Mapping], cfg: Mapping) -> dict[str, list[str]]:
        """Which runs of ``plan`` share a training job: ``{job name: [run keys]}``, every run in exactly
        one job. A job named by its one run's key trains that run alone (the default for every run);
        any other job trains its runs together (``train_group``)."""
        return {key: [key] for key in plan}

    def upstream(self, spec: Mapping) -> dict[str, str]:
        """The files a run's training reads (``--in NAME=PATH``), by name, as paths under the results
        directory (the mixture's baselines: their protocol's ``best.json``); none by default."""
        return {}

    def execution(self, cfg: Mapping) -> dict:
        """The execution choices the config names for this experiment's runs (``RunContext`` fields
        such as ``capture``): they never enter a spec or its hash."""
        return {}

    def settings(self, cfg: Mapping) -> dict:
        """Evaluation and report settings from the config (what ``--settings JSON`` carries)."""
        return {}

    def train_run(self, spec: Mapping, run_dir: Path, ctx: RunContext) -> dict:
        raise NotImplementedError

    def train_group(self, specs: list[Mapping], run_dirs: list[Path], ctx: RunContext) -> list[dict]:
        """Several runs in one job. By default one after another; an experiment with a run-batched
        engine (the mixture) trains them as one batched model where that is exact."""
        return [self.train_run(spec, run_dir, ctx) for spec, run_dir in zip(specs, run_dirs)]

    def evaluate_run(self, run_dir: Path, settings: Mapping, ctx: RunContext) -> dict:
        raise NotImplementedError

    def our_choices(self, spec: Mapping) -> list[str]:
        """The choices the paper and released code leave open that this run depends on."""
        return []

    def spec_columns(self, spec: Mapping) -> dict:
        """The settings columns of a run's tidy row (names stable across versions)."""
        return {"model": spec["model"], "seed": spec["seed"]}

    def metric_rows(self, metrics: Mapping) -> list[dict]:
        """A run's metrics as one or more row fragments (one per SVM trial, say); default: one."""
        skip = ("run_dir", "config_hash", "status", "model")  # in the row already, from the record
        return [{k: v for k, v in metrics.items() if k not in skip and not isinstance(v, (dict, list))}]

    def report(self, name: str) -> ReportFn:
        method, _ = self.reports[name]
        return getattr(self, method)


EXPERIMENTS: dict[str, Experiment] = {}  # full once ali.experiments is imported, which importing this module does first


def register(cls: type[Experiment]) -> type[Experiment]:
    EXPERIMENTS[cls.name] = cls()
    return cls


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


@dataclass(frozen=True)
class Report:
    """A named report: what it does, and where its settings come from in a config."""

    run: ReportFn
    help: str
    settings: Callable[[Mapping], dict]


def all_reports() -> dict[str, Report]:
    """Every report: each experiment's, and the suite's report page."""
    from ali.report.page import report_page  # matplotlib loads only when the report page is asked for

    reports = {name: Report(exp.report(name), help_, exp.settings) for exp in EXPERIMENTS.values()
               for name, (_, help_) in exp.reports.items()}
    reports["page"] = Report(report_page, "report.html: every published number beside ours with a computed "
                                          "verdict, the figures, training curves and provenance (--in results=DIR)",
                             lambda cfg: {"preset": get(cfg, "preset", str)})
    return reports


def plan_all(cfg: Mapping) -> dict[str, dict]:
    """Every training run of every experiment by run key; two experiments never share a key."""
    specs: dict[str, dict] = {}
    for exp in EXPERIMENTS.values():
        plan = exp.plan(cfg)
        clash = sorted(set(plan) & set(specs))
        if clash:
            raise ValueError(f"experiment {exp.name!r} plans run keys another experiment already has: {clash}")
        specs.update(plan)
    return specs


def plan_jobs(exp: Experiment, plan: Mapping[str, Mapping], cfg: Mapping) -> dict[str, list[str]]:
    """``exp.jobs(plan, cfg)``, checked: every run of the plan in exactly one job, and no job empty."""
    jobs = exp.jobs(plan, cfg)
    members = [key for keys in jobs.values() for key in keys]
    twice = sorted({key for key in members if members.count(key) > 1})
    missing, unknown = sorted(set(plan) - set(members)), sorted(set(members) - set(plan))
    empty = sorted(job for job, keys in jobs.items() if not keys)
    if twice or missing or unknown or empty:
        raise ValueError(f"experiment {exp.name!r}: jobs() must put every planned run in exactly one job; runs in "
                         f"two jobs {twice}, in none {missing}, not planned {unknown}, empty jobs {empty}")
    return jobs


def check_names(cfg: Mapping, key: str, known: tuple[str, ...]) -> list[str]:
    """A config list whose every entry must be one of ``known`` (models, sources, datasets)."""
    values = get(cfg, key, list)
    unknown = sorted(set(values) - set(known), key=str)
    if unknown:
        raise ConfigError(f"config key {key!r} has unknown entries {unknown}; known: {list(known)}")
    return values


def check_seeds(cfg: Mapping, key: str) -> list[int]:
    seeds = get(cfg, key, list)
    if not seeds or not all(type(s) is int and s >= 0 for s in seeds):  # bool is an int subclass
        raise ConfigError(f"config key {key!r} must list non-negative integers, got {seeds!r}")
    return seeds


def arch_from_config(cfg: Mapping, key: str) -> Architecture:
    """The appendix architecture at ``<key>.arch`` with its release-vs-table options ``<key>.arch_options``."""
    name = get(cfg, key + ".arch", str, choices=tuple(ARCHITECTURES))
    try:
        return architecture(name, get(cfg, key + ".arch_options", dict, default={}))
    except ValueError as err:
        raise ConfigError(f"config key '{key}.arch_options': {err}") from err


def run_architecture(spec: Mapping) -> Architecture:
    """The architecture a run spec names, with its options (every run spec stores them resolved)."""
    return architecture(spec["arch"], spec.get("arch_options"))


def read_json(path: Path) -> Any:
    """A JSON file a job wrote (metrics.json, best.json); unreadable ones are one ``UnusableFileError`` line."""
    path = Path(path)
    return files.read_json(path, path.stem, "delete it and rerun the job that writes it (the workflow reruns "
                                            "a job whose output is missing)")


def write_json(path: Path, obj: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float))


def write_csv(frame, path: Path) -> None:
    """A tidy table that pandas reads back in one line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, frame.to_csv(index=False))
