"""Command line: ``ali <command> --help`` (or ``python -m ali``). The Snakemake rules call these.

Six commands, each a lookup in the experiment registry (``ali.experiments.base``): ``plan`` lists
runs, ``train`` trains one, ``evaluate`` measures one, ``report`` turns runs into tables and
figures, ``download`` fetches a dataset. No command knows any experiment by name, except ``score``,
which measures other people's samples and features as ``evaluate`` measures our runs (``ali.score``).
Beside them, ``plan --cost`` prices targets before they run (``ali.cost``) and ``doctor`` checks every
path on this machine through these commands (``ali.doctor``).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

EPILOG = """\
The workflow (Snakefile) calls these commands; you can call them by hand too, e.g.
  ali plan --configfile config/smoke.yaml
  ali train --configfile config/smoke.yaml --run fixed/ali/run0 --out /tmp/ali_run
  ali evaluate --configfile config/smoke.yaml --run-dir /tmp/ali_run --out /tmp/ali_run/metrics.json
A GPU box with only PyTorch can run a whole protocol by hand (each group one batched model):
  python -m ali train --configfile config/paper.yaml --run 'pacgan/ali/*' --out results/mixture
  python -m ali evaluate --configfile config/paper.yaml --run-dir results/mixture/pacgan/ali/run*
  ali report mixture-tables --in runs=/tmp/ali_run --out runs=/tmp/runs.csv table=/tmp/mixture.csv
"""

TRAIN_HELP = """\
Every experiment trains the same way. The run comes from --spec JSON (what the workflow passes) or
from --configfile with --run KEY (see `ali plan`); its spec names its experiment:
  mixture  the 25-mode mixture (section 4.5): ALI, GAN, and the baselines inverse, posthoc (both need
           --in best=best.json of their protocol) and vae. Checkpoints every 10,000 steps.
  images   unsupervised ALI, GAN, VAE on images (appendix Tables 3-6); needs --data-root.
  semisup  K+1 ALI and GAN with feature matching (improved-gan's protocol); needs --data-root.
  svm      features of one source for the L2-SVM (Table 1): --in run=DIR of the image run (not for raw).
Several specs (a JSON list, or a --run glob) train as one group: the mixture's ALI and GAN runs as
one run-batched model (ali/engine), every other experiment one run after another. A run's seed alone
fixes its weights, noise and data order, alone or in a group. A run resumes from its checkpoint when
run again; a NaN/inf loss stops (freezes) that run and records it as diverged (exit 0): it is never
retried silently. SIGTERM or SIGUSR1 (a cluster's preemption) stops training at the next step with a
checkpoint of that step and exit status 75; run the same command again to resume."""

EVALUATE_HELP = """\
Measures one finished run; the experiment is read from the run's record.json:
  mixture  the paper's mode count (10,000 samples), the VEEGAN/PacGAN metrics (2,500 samples within
           3 std) and, with an encoder, reconstruction and q(z)-vs-p(z) metrics on the held-out set.
           Settings: mixture.eval (--settings JSON or --configfile).
  semisup  test error with the Polyak-averaged weights (and with the last weights, for reference).
  svm      C chosen on validation with one labelled draw, then n_trials fresh draws on the test set.
  images   image runs are measured through the svm experiment and their figures (`ali report`)."""

DOCTOR_HELP = """\
Runs every path once through this CLI (subprocesses of `python -m ali plan/train/evaluate/report` on
tiny configs in a temporary folder): mixture ALI and GAN groups (simultaneous and alternating), every
mixture baseline, image ALI/GAN/VAE, K+1 ALI and GAN-FM, SVM features; on CUDA also a captured group
against an eager one, kill-and-resume under capture, a forced capture failure falling back to eager,
no precision leaking into a later fp32 run, tests/test_train_capture_cuda.py, then the benchmarks.
Prints one PASS/FAIL/SKIP line per check, writes the measured rates to <--out>/<device>.json (read
by `ali plan --cost`) and exits 1 on any FAIL. Needs only PyTorch, torchvision, numpy, scikit-learn,
pandas, matplotlib and PyYAML: `PYTHONPATH=. python3 -m ali doctor` works without installing the package."""


def _context(args, exp=None):
    """The run context of a command: its execution options, with ``exp``'s execution choices from
    --configfile (``mixture.capture``, say) wherever the command line gives none."""
    from ali.experiments.base import RunContext

    execution = {}
    if exp is not None and getattr(args, "configfile", None):
        from ali.config import load_config

        execution = exp.execution(load_config(args.configfile))
    for name in ("capture", "channels_last"):
        if getattr(args, name, None) is not None:
            execution[name] = getattr(args, name)
    return RunContext(device=getattr(args, "device", "auto"), threads=getattr(args, "threads", 1),
                      data_root=Path(getattr(args, "data_root", "data")),
                      checkpoint_every=getattr(args, "checkpoint_every", None),
                      log_every=getattr(args, "log_every", None), progress=not getattr(args, "no_progress", False),
                      inputs=_named_paths(getattr(args, "inputs", None) or []), **execution)


def _named_paths(pairs: list[str]) -> dict[str, list[Path]]:
    """``NAME=PATH`` arguments as {name: [paths]}; a name may repeat."""
    named: dict[str, list[Path]] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"error: expected NAME=PATH, got {pair!r}")
        named.setdefault(name, []).append(Path(path))
    return named


def _json_argument(text: str, option: str, fix: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"error: {option} is not valid JSON ({err.msg} at character {err.pos}); {fix}") from err


def _runs_from_args(args) -> list[tuple[dict, Path]]:
    """(spec, run directory) of every run to train: from --spec JSON (one spec or a list, with one
    --out each), or from --configfile with --run KEY or a glob (``pacgan/ali/*``, under --out ROOT)."""
    from fnmatch import fnmatch

    from ali.config import load_config
    from ali.experiments.base import plan_all

    if args.spec:
        specs = _json_argument(args.spec, "--spec", "pass a spec as `ali plan --json` prints it")
        specs = specs if isinstance(specs, list) else [specs]
        if len(specs) != len(args.out):
            raise SystemExit(f"error: {len(specs)} specs but {len(args.out)} --out directories")
        return list(zip(specs, map(Path, args.out)))
    if not (args.configfile and args.run):
        raise SystemExit("error: give --spec JSON, or --configfile FILE with --run KEY (see `ali plan`)")
    plan = plan_all(load_config(args.configfile))
    keys = [k for k in plan if fnmatch(k, args.run)]
    if not keys:
        raise SystemExit(f"error: run {args.run!r} is not in the plan; `ali plan --configfile {args.configfile}`"
                         f" lists them")
    if len(keys) == 1 and not any(c in args.run for c in "*?["):
        return [(plan[keys[0]], Path(args.out[0]))]
    if len(args.out) != 1:
        raise SystemExit("error: with a --run pattern, give one --out ROOT; each run trains into ROOT/<run key>")
    return [(plan[k], Path(args.out[0]) / k) for k in keys]


def _settings_from_args(args, source) -> dict:
    """--settings JSON, else ``source.settings`` (an experiment's or a report's) of --configfile, else none."""
    from ali.config import load_config

    if args.settings:
        return _json_argument(args.settings, "--settings", "pass the settings as JSON, or use --configfile")
    return source.settings(load_config(args.configfile)) if args.configfile else {}


def cmd_plan(args) -> None:
    from ali.config import PRESET_DIR, load_config
    from ali.experiments.base import plan_all

    args.configfile = args.configfile or PRESET_DIR / "paper.yaml"
    if args.cost:
        from ali.cost import cost_report

        print(cost_report(load_config(args.configfile), args.target, args.device))
        return
    specs = plan_all(load_config(args.configfile))
    if args.experiment:
        specs = {k: s for k, s in specs.items() if s["experiment"] == args.experiment}
    if args.json:
        print(json.dumps(specs, indent=2, sort_keys=True))
        return
    print(_plan_table(specs))


def _plan_table(specs: dict[str, dict]) -> str:
    from ali.optim import AdamConfig

    lines = [f"{'run':<34} {'seed':>6} {'lr':>10} {'betas (torch)':>16} {'init_std':>9} {'batch':>6} {'steps':>9}"]
    for key, s in specs.items():
        if "adam" not in s:  # svm feature runs: no optimiser
            lines.append(f"{key:<34} {s['seed']:>6} {'-':>10} {'-':>16} {'-':>9} {'-':>6} {'-':>9}")
            continue
        b1, b2 = AdamConfig(**s["adam"]).torch_betas()
        lines.append(f"{key:<34} {s['seed']:>6} {s['adam']['lr']:>10.3g} {f'({b1:.3g}, {b2:.4g})':>16} "
                     f"{s['init_std']:>9.3g} {s['batch_size']:>6} {s['steps']:>9}")
    return "\n".join(lines)


def cmd_train(args) -> None:
    from ali.experiments.base import experiment
    from ali.train.preempt import stop_on_signals

    runs = _runs_from_args(args)
    names = {spec["experiment"] for spec, _ in runs}
    if len(names) != 1:
        raise SystemExit(f"error: one job trains runs of one experiment, got {sorted(names)}")
    exp = experiment(names.pop())
    ctx = _context(args, exp)
    with stop_on_signals():  # a cluster's SIGTERM or SIGUSR1: checkpoint at the next step, exit PREEMPTED_EXIT
        if len(runs) == 1:
            records = [exp.train_run(runs[0][0], runs[0][1], ctx)]
        else:
            records = exp.train_group([spec for spec, _ in runs], [d for _, d in runs], ctx)
    status = {"diverged": "DIVERGED (recorded, not retried)", "skipped": "skipped"}
    for (_, out), record in zip(runs, records):
        print(f"{status.get(record['status'], 'done')}: {out} after {record.get('steps_done')} steps in "
              f"{record['wall_time_s']:.1f}s", file=sys.stderr)


def cmd_evaluate(args) -> None:
    from ali.experiments.base import experiment, write_json
    from ali.train.record import METRICS, read_record

    if len(args.run_dir) > 1 and args.out:
        raise SystemExit("error: with several --run-dir, leave out --out: each writes <run dir>/metrics.json")
    for run_dir in map(Path, args.run_dir):
        exp = experiment(read_record(run_dir)["spec"]["experiment"])
        metrics = exp.evaluate_run(run_dir, _settings_from_args(args, exp), _context(args))
        write_json(Path(args.out) if args.out else run_dir / METRICS, metrics)


def cmd_report(args) -> None:
    from ali.experiments.base import all_reports

    report = all_reports()[args.name]
    outputs = {name: paths[0] for name, paths in _named_paths(args.outputs).items()}
    report.run(_context(args).inputs, outputs, _settings_from_args(args, report), _context(args))


def cmd_download(args) -> None:
    from ali.data import images
    from ali.train.files import write_text

    images.download(args.dataset, Path(args.root))
    for split in images.DATASETS[args.dataset].splits:
        images.check(args.dataset, split, Path(args.root))
    if args.flag:
        Path(args.flag).parent.mkdir(parents=True, exist_ok=True)
        write_text(Path(args.flag), f"{args.dataset}: every split verified\n")


def cmd_doctor(args) -> None:
    from ali.doctor import main as doctor

    if doctor(args.device, args.quick, Path(args.out), args.keep, args.budget):
        raise SystemExit(1)


SCORE_HELP = """\
Measures what your model produced exactly as `ali evaluate` measures our runs (the same functions),
under the settings of --configfile (default the paper preset). Files: .npy, .pt (one tensor) or .csv.
  mixture  SAMPLES: (n_samples + n_strict_samples, 2) generator samples, the two batches in that order
           (10,000 + 2,500 in the paper preset); NaN/inf rows count for no mode, as ours. With --latents
           and --reconstructions (codes and reconstructions of the held-out set, in its order; or of
           --inputs): the inference metrics too. --out: one tidy CSV row, with metrics_version.
  svm      Table 1's L2-SVM protocol on your features: C chosen on validation with one class-balanced
           draw, then n_trials fresh draws on the test set. Without --val, --train must be the whole
           'train' split of svm.dataset, cut as the released code cuts it."""


def cmd_score(args) -> None:
    import pandas as pd

    from ali import score
    from ali.config import PRESET_DIR, load_config
    from ali.experiments.base import write_csv
    from ali.train.runtime import resolve_device

    cfg = load_config(args.configfile or PRESET_DIR / "paper.yaml")
    if args.kind == "mixture":
        optional = (None if a is None else Path(a) for a in (args.latents, args.reconstructions, args.inputs))
        row = score.score_mixture(cfg, Path(args.samples), *optional)
        print(score.describe_mixture(row))
        if args.out:
            write_csv(pd.DataFrame([row]), Path(args.out))
        return
    pairs = (None if a is None else (Path(a[0]), Path(a[1])) for a in (args.train, args.test, args.val))
    trials, table = score.score_svm(cfg, *pairs, name=args.name, device=resolve_device(args.device))
    print(score.describe_svm(table.iloc[0]))
    if args.out:
        write_csv(trials, Path(args.out))
    if args.table:
        write_csv(table, Path(args.table))


def _add_execution(s: argparse.ArgumentParser, device: bool = True) -> None:
    """The options that say how a command runs, never what it computes."""
    if device:
        s.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda[:N] (default auto)")
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    s.add_argument("--data-root", default="data", help="dataset directory (default data)")


def _add_step_execution(s: argparse.ArgumentParser) -> None:
    """How a training step runs: execution choices, never part of a spec or its hash."""
    from ali.models.base import CAPTURE_MODES

    s.add_argument("--capture", choices=CAPTURE_MODES,
                   help="the whole training step as one CUDA graph: auto (on CUDA), on, off (default: the "
                        "config's <experiment>.capture with --configfile, else auto)")
    s.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                   help="image models: NHWC memory layout (default: the config's <experiment>.channels_last "
                        "with --configfile, else off)")


def _add_settings(s: argparse.ArgumentParser) -> None:
    s.add_argument("--settings", help="the experiment's settings as JSON (what the workflow passes)")
    s.add_argument("--configfile", help="preset YAML to read the settings from (instead of --settings)")


def build_parser() -> argparse.ArgumentParser:
    from ali.data.catalog import DATASETS
    from ali.experiments.base import EXPERIMENTS, all_reports

    p = argparse.ArgumentParser(prog="ali", description="Reproduce Adversarially Learned Inference "
                                "(Dumoulin et al., ICLR 2017): plan, train, evaluate, report.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--verbose", action="store_true",
                   help="on a bad file, print the library's own report under the one-line error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter

    s = sub.add_parser("plan", help="list the training runs a config defines", formatter_class=raw,
                       description="A preset (config/paper.yaml, or another merged on top of it) expands into "
                                   "every run of every experiment: seed, learning rate, Adam betas in PyTorch's "
                                   "convention, init std, batch size and steps.")
    s.add_argument("--configfile", help="preset YAML, merged on top of config/paper.yaml (default: the paper preset)")
    s.add_argument("--experiment", choices=sorted(EXPERIMENTS), help="only this experiment's runs")
    s.add_argument("--json", action="store_true", help="print the full run specs as JSON")
    s.add_argument("--cost", action="store_true", help="per target and per run: steps, the rate (measured in "
                   "results/rates/*.json, else the built-in table, with its source) and GPU-/CPU-hours")
    s.add_argument("--target", nargs="+", help="with --cost: Snakemake targets to price (default: results/"
                   "mixture.csv, table1.csv and table2.csv of the preset)")
    s.add_argument("--device", choices=("cpu", "cuda"), help="with --cost: price every run on this device "
                   "(default: each experiment's config device; auto counts as cuda)")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("train", help="train one run, or a group of runs in one job (resumes from checkpoints)",
                       description=TRAIN_HELP, formatter_class=raw)
    s.add_argument("--out", required=True, nargs="+",
                   help="run directory (checkpoint, model.pt, record.json); one per spec, or one ROOT with a "
                        "--run pattern")
    s.add_argument("--spec", help="run spec as JSON, or a JSON list of specs trained as one group (what the "
                                  "workflow passes)")
    s.add_argument("--configfile", help="preset YAML (with --run, instead of --spec)")
    s.add_argument("--run", help="run key from `ali plan` (fixed/ali/run0), or a glob (pacgan/ali/*) to train "
                                 "those runs as one group")
    s.add_argument("--in", dest="inputs", nargs="*", metavar="NAME=PATH",
                   help="upstream files the run needs: best=best.json (mixture baselines), run=DIR (svm)")
    _add_execution(s)
    _add_step_execution(s)
    s.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default per experiment)")
    s.add_argument("--log-every", type=int, help="steps between progress lines (default per experiment)")
    s.add_argument("--no-progress", action="store_true", help="no progress output")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="measure one trained run (metrics JSON)", description=EVALUATE_HELP,
                       formatter_class=raw)
    s.add_argument("--run-dir", required=True, nargs="+", help="one or more run directories")
    s.add_argument("--out", help="metrics JSON to write (default: <run dir>/metrics.json)")
    _add_settings(s)
    _add_execution(s)
    s.set_defaults(func=cmd_evaluate)

    reports = all_reports()
    s = sub.add_parser("report", help="tables and figures from runs", formatter_class=raw,
                       description="Turns runs into tables (one tidy row per run, then group-bys with the "
                                   "published numbers beside ours) and figures. Reports:\n" + "\n".join(
                                       f"  {name:<15} {r.help}" for name, r in reports.items()))
    s.add_argument("name", choices=list(reports), help="which report")
    s.add_argument("--in", dest="inputs", nargs="*", default=[], metavar="NAME=PATH",
                   help="inputs by name; a name may repeat (runs=DIR, metrics=FILE, best=FILE, baselines=DIR, "
                        "svm=DIR, semisup=DIR, run=DIR)")
    s.add_argument("--out", dest="outputs", nargs="+", required=True, metavar="NAME=PATH",
                   help="outputs by name (runs=, table=, best=, figure=, trials=, samples=, reconstructions=, "
                        "interpolations=)")
    _add_settings(s)
    _add_execution(s, device=False)
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("download", help="download and verify one dataset (run where there is internet)",
                       description="Uses torchvision's own download code, then verifies every split's MD5. "
                                   "Idempotent: verified files are kept.")
    s.add_argument("dataset", choices=sorted(DATASETS))
    s.add_argument("--root", default="data", help="data directory (default data)")
    s.add_argument("--flag", help="file to write once everything is verified (for the workflow)")
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("doctor", help="self-check every training path on this machine (CPU, or a new GPU box)",
                       formatter_class=raw, description=DOCTOR_HELP)
    s.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda (default auto)")
    s.add_argument("--quick", action="store_true", help="CPU CI: the mixture paths and raw SVM features only")
    s.add_argument("--out", default="results/rates", help="folder for <device>.json, the measured rates "
                                                         "(default results/rates)")
    s.add_argument("--keep", action="store_true", help="keep the temporary run directories")
    s.add_argument("--budget", type=float, default=480.0, help="seconds after which no further check starts "
                                                               "(default 480: a lent GPU's 8 minutes)")
    s.set_defaults(func=cmd_doctor)

    s = sub.add_parser("score", help="measure your own model's samples or features as our runs are measured",
                       description=SCORE_HELP, formatter_class=raw)
    kinds = s.add_subparsers(dest="kind", required=True, metavar="KIND")
    k = kinds.add_parser("mixture", help="mode counts, %% high quality, reverse KL (and inference metrics) of "
                                         "mixture samples")
    k.add_argument("samples", help="(n_samples + n_strict_samples, 2) generator samples")
    k.add_argument("--latents", help="codes z = encode(x) of the held-out set (or of --inputs), (n, d)")
    k.add_argument("--reconstructions", help="decode(z) of those codes, (n, 2)")
    k.add_argument("--inputs", help="the inputs x encoded (default: the config's held-out set)")
    k.add_argument("--out", help="CSV to write the one tidy row to")
    k.add_argument("--configfile", help="preset YAML for mixture.data and mixture.eval (default config/paper.yaml)")
    k = kinds.add_parser("svm", help="Table 1's L2-SVM protocol on your features")
    for flag, need in (("--train", True), ("--val", False), ("--test", True)):
        k.add_argument(flag, nargs=2, metavar=("FEATURES", "LABELS"), required=need,
                       help=f"{flag[2:]} features (n, d) and labels (n,) in 0..9")
    k.add_argument("--name", default="yours", help="the model column of the rows (default yours)")
    k.add_argument("--out", help="CSV of the trials, one row each (as svm_trials.csv)")
    k.add_argument("--table", help="CSV of their summary (as table1.csv's L2-SVM rows)")
    k.add_argument("--configfile", help="preset YAML for the svm settings (default config/paper.yaml)")
    k.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda[:N] (default auto)")
    s.set_defaults(func=cmd_score)

    for action in sub._choices_actions:  # each command's --help opens with its one-line summary
        command = sub.choices[action.dest]
        command.description = f"{action.help}.\n\n{command.description or ''}".strip()
    return p


def main(argv: list[str] | None = None) -> int:
    import torch

    from ali.config import ConfigError
    from ali.data.catalog import DatasetMissingError
    from ali.score import ScoreInputError
    from ali.train.files import UnusableFileError
    from ali.train.preempt import PREEMPTED_EXIT, Preempted

    args = build_parser().parse_args(argv)
    torch.set_num_threads(getattr(args, "threads", 1))  # the one place threads are set
    try:
        args.func(args)
    except (ConfigError, UnusableFileError, DatasetMissingError, ScoreInputError) as err:  # CheckpointError too
        message = str(err)  # a schema error already reads "config error: ...", as the workflow prints it
        print(message if message.startswith("config error:") else f"error: {message}", file=sys.stderr)
        if args.verbose and err.__cause__ is not None:
            traceback.print_exception(err.__cause__, file=sys.stderr)
        return 2
    except Preempted as stop:
        print(f"preempted: {stop}", file=sys.stderr)
        return PREEMPTED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
