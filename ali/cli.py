"""Command line: ``ali <command> --help`` (or ``python -m ali``). The Snakemake rules call these."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """\
The workflow (Snakefile) calls these commands; you can call them by hand too, e.g.
  ali plan --configfile config/smoke.yaml
  ali train --configfile config/smoke.yaml --run fixed/ali/run0 --out /tmp/ali_run
  ali evaluate --configfile config/smoke.yaml --run-dir /tmp/ali_run --out /tmp/ali_run/metrics.json
"""


def _spec_from_args(args) -> dict:
    from ali.config import load_config
    from ali.experiments import mixture

    if args.spec:
        return json.loads(args.spec)
    if not (args.configfile and args.run):
        raise SystemExit("error: give --spec JSON, or --configfile FILE with --run PROTOCOL/MODEL/runI")
    specs = mixture.plan(load_config(args.configfile))
    if args.run not in specs:
        raise SystemExit(f"error: run {args.run!r} is not in the plan; `ali plan --configfile {args.configfile}`"
                         f" lists them")
    return specs[args.run]


def cmd_plan(args) -> None:
    from ali.config import load_config
    from ali.experiments import mixture

    specs = mixture.plan(load_config(args.configfile))
    if args.json:
        print(json.dumps(specs, indent=2, sort_keys=True))
        return
    print(f"{'run':<28} {'seed':>6} {'lr':>10} {'betas (torch)':>16} {'init_std':>9} {'steps':>8}")
    from ali.optim import AdamConfig

    for key, s in specs.items():
        b1, b2 = AdamConfig(**s["adam"]).torch_betas()
        print(f"{key:<28} {s['seed']:>6} {s['adam']['lr']:>10.3g} {f'({b1:.3g}, {b2:.4g})':>16} "
              f"{s['init_std']:>9.3g} {s['steps']:>8}")


def cmd_train(args) -> None:
    import torch

    from ali.experiments import mixture

    torch.set_num_threads(args.threads)
    spec = _spec_from_args(args)
    out = Path(args.out)
    source = None
    if spec["model"] in mixture.NEEDS_SOURCE:
        if not args.best:
            raise SystemExit(f"error: model {spec['model']} trains on the best GAN run: pass --best best.json")
        best = json.loads(Path(args.best).read_text())
        if best.get("gan") is None:
            mixture.skip_run(spec, out, "no GAN run of this protocol finished without diverging")
            print(f"skipped {out}: no usable GAN run to take the decoder from", file=sys.stderr)
            return
        source = Path(best["gan"])
    record = mixture.train_run(spec, out, device=args.device, source_dir=source,
                               checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                               progress=not args.no_progress)
    status = "DIVERGED (recorded, not retried)" if record["diverged"] else "done"
    print(f"{status}: {out} after {record['steps_done']} steps in {record['wall_time_s']:.1f}s", file=sys.stderr)


def cmd_evaluate(args) -> None:
    import torch

    from ali.config import load_config
    from ali.experiments import mixture

    torch.set_num_threads(args.threads)
    settings = json.loads(args.eval) if args.eval else mixture.eval_settings(load_config(args.configfile))
    metrics = mixture.evaluate_run(Path(args.run_dir), settings)
    _write_json(Path(args.out), metrics)


def cmd_best(args) -> None:
    from ali.experiments import mixture

    metrics = [json.loads(Path(p).read_text()) for p in args.metrics]
    best = {}
    for model in mixture.BASE_MODELS:
        chosen = mixture.best_run([m for m in metrics if m["model"] == model])
        best[model] = chosen["run_dir"] if chosen else None
        best[f"{model}_modes"] = chosen["modes"] if chosen else None
    best["criterion"] = "most modes (paper count), then strict modes, %HQ, lower reverse KL: our choice"
    _write_json(Path(args.out), best)


def cmd_mixture_report(args) -> None:
    from ali.report.tables import mixture_summary, runs_frame

    runs = runs_frame([Path(d) for d in args.run_dirs])
    Path(args.out_runs).parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out_runs, index=False)
    mixture_summary(runs).to_csv(args.out_table, index=False)


def cmd_figure8(args) -> None:
    from ali.data.mixture import MixtureSpec
    from ali.experiments import mixture
    from ali.report.figures import figure8

    best = json.loads(Path(args.best).read_text())
    dirs = {"ali": best.get("ali")} | {Path(d).parent.name: d for d in args.baselines}
    models, spec = {}, None
    for key, d in dirs.items():
        if d is None:
            models[key] = (None, "no usable run")
            continue
        record = json.loads((Path(d) / mixture.RECORD).read_text())
        if record["status"] != "ok":
            models[key] = (None, record["status"])
            continue
        model, record = mixture.load_trained(Path(d))
        models[key] = (model, "")
        spec = MixtureSpec(**{**record["spec"]["data"], "grid": tuple(record["spec"]["data"]["grid"])})
    if spec is None:
        raise SystemExit("error: no model in the figure finished training; see the runs' record.json")
    figure8(models, spec, Path(args.out), args.title)


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ali", description="Reproduce Adversarially Learned Inference "
                                "(Dumoulin et al., ICLR 2017): train, evaluate, tabulate.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("plan", help="list the training runs a config defines")
    s.add_argument("--configfile", required=True, help="preset YAML, e.g. config/paper.yaml")
    s.add_argument("--json", action="store_true", help="print the full run specs as JSON")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("train", help="train one run (resumes from its checkpoint if one exists)")
    s.add_argument("--out", required=True, help="run directory (checkpoint, model.pt, record.json)")
    s.add_argument("--spec", help="run spec as JSON (what the workflow passes)")
    s.add_argument("--configfile", help="preset YAML (with --run, instead of --spec)")
    s.add_argument("--run", help="run key from `ali plan`, e.g. fixed/ali/run0")
    s.add_argument("--best", help="best.json of the protocol (inverse mapping and post-hoc need the best GAN)")
    s.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda[:N] (default auto)")
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: small MLPs)")
    s.add_argument("--checkpoint-every", type=int, default=10_000, help="steps between checkpoints")
    s.add_argument("--log-every", type=int, default=1000, help="steps between progress lines")
    s.add_argument("--no-progress", action="store_true", help="no progress output")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="mode coverage and inference metrics of one trained run")
    s.add_argument("--run-dir", required=True)
    s.add_argument("--out", required=True, help="metrics JSON to write")
    s.add_argument("--eval", help="evaluation settings as JSON (what the workflow passes)")
    s.add_argument("--configfile", help="preset YAML (instead of --eval)")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("best", help="pick the best-covering ALI and GAN runs of one protocol")
    s.add_argument("--metrics", nargs="+", required=True, help="metrics.json of each ALI and GAN run")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_best)

    s = sub.add_parser("mixture-report", help="write mixture_runs.csv and mixture.csv")
    s.add_argument("--run-dirs", nargs="+", required=True)
    s.add_argument("--out-runs", required=True)
    s.add_argument("--out-table", required=True)
    s.set_defaults(func=cmd_mixture_report)

    s = sub.add_parser("figure8", help="the paper's Figure 8 from the best ALI and the baselines")
    s.add_argument("--best", required=True)
    s.add_argument("--baselines", nargs="*", default=[], help="run directories of inverse, posthoc, vae")
    s.add_argument("--out", required=True)
    s.add_argument("--title", default="Figure 8")
    s.set_defaults(func=cmd_figure8)
    return p


def main(argv: list[str] | None = None) -> int:
    from ali.config import ConfigError
    from ali.train import CheckpointError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
