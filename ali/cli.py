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


def _all_specs(cfg: dict) -> dict[str, dict]:
    from ali.experiments import images, mixture, semisup

    return {**mixture.plan(cfg), **images.plan(cfg), **semisup.plan(cfg)}


def _spec_from_args(args) -> dict:
    from ali.config import load_config

    if args.spec:
        return json.loads(args.spec)
    if not (args.configfile and args.run):
        raise SystemExit("error: give --spec JSON, or --configfile FILE with --run KEY (see `ali plan`)")
    specs = _all_specs(load_config(args.configfile))
    if args.run not in specs:
        raise SystemExit(f"error: run {args.run!r} is not in the plan; `ali plan --configfile {args.configfile}`"
                         f" lists them")
    return specs[args.run]


def cmd_plan(args) -> None:
    from ali.config import load_config
    from ali.optim import AdamConfig

    specs = _all_specs(load_config(args.configfile))
    if args.json:
        print(json.dumps(specs, indent=2, sort_keys=True))
        return
    print(f"{'run':<28} {'seed':>6} {'lr':>10} {'betas (torch)':>16} {'init_std':>9} {'batch':>6} {'steps':>9}")
    for key, s in specs.items():
        b1, b2 = AdamConfig(**s["adam"]).torch_betas()
        print(f"{key:<28} {s['seed']:>6} {s['adam']['lr']:>10.3g} {f'({b1:.3g}, {b2:.4g})':>16} "
              f"{s['init_std']:>9.3g} {s['batch_size']:>6} {s['steps']:>9}")


def cmd_train(args) -> None:
    import torch

    from ali.experiments import images, mixture

    torch.set_num_threads(args.threads)
    spec = _spec_from_args(args)
    out = Path(args.out)
    if spec["experiment"] == "semisup":
        from ali.experiments import semisup

        record = semisup.train_run(spec, out, data_root=Path(args.data_root), device=args.device,
                                   checkpoint_every=args.checkpoint_every or 2000, log_every=args.log_every or 100,
                                   progress=not args.no_progress)
        _report_training(record, out)
        return
    if spec["experiment"] == "images":
        record = images.train_run(spec, out, data_root=Path(args.data_root), device=args.device,
                                  checkpoint_every=args.checkpoint_every or 2000, log_every=args.log_every or 100,
                                  progress=not args.no_progress)
        _report_training(record, out)
        return
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
                               checkpoint_every=args.checkpoint_every or 10_000, log_every=args.log_every or 1000,
                               progress=not args.no_progress)
    _report_training(record, out)


def _report_training(record: dict, out: Path) -> None:
    status = "DIVERGED (recorded, not retried)" if record["diverged"] else "done"
    print(f"{status}: {out} after {record['steps_done']} steps in {record['wall_time_s']:.1f}s", file=sys.stderr)


def cmd_download(args) -> None:
    from ali.data import images

    images.download(args.dataset, Path(args.root))
    for split in images.DATASETS[args.dataset].splits:
        images.check(args.dataset, split, Path(args.root))
    if args.flag:
        Path(args.flag).parent.mkdir(parents=True, exist_ok=True)
        Path(args.flag).write_text(f"{args.dataset}: every split verified\n")


def cmd_image_figures(args) -> None:
    import torch

    from ali.data import images as image_data
    from ali.experiments import images
    from ali.report import image_figures as figs

    torch.set_num_threads(args.threads)
    model, record = images.load(Path(args.run_dir))
    spec = record["spec"]
    out = Path(args.out_dir)
    prefix = f"{spec['dataset']}_{spec['model']}_seed{spec['seed']}"
    torch.manual_seed(args.seed)
    if args.kind == "samples":
        figs.samples_grid(model, args.n_samples, out / f"{prefix}_samples.png")
        return
    if not model.has_encoder:
        raise SystemExit(f"error: {spec['model']} has no encoder: no reconstructions or interpolations")
    x, _ = image_data.load(spec["dataset"], spec["heldout_split"], Path(args.data_root))
    x = torch.from_numpy(image_data.to_float(x))
    n, k = args.n_reconstructions, args.n_interpolations
    figs.reconstructions_grid(model, x[:n], out / f"{prefix}_reconstructions.png")
    figs.interpolation_grid(model, x[n:n + k], x[n + k:n + 2 * k], args.interpolation_steps,
                            out / f"{prefix}_interpolations.png")


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


def cmd_svm_features(args) -> None:
    import torch

    from ali.config import load_config
    from ali.experiments import svm

    torch.set_num_threads(args.threads)
    s = json.loads(args.settings) if args.settings else svm.settings(load_config(args.configfile))
    meta = svm.compute_features(args.source, Path(args.run_dir) if args.run_dir else None, s,
                                Path(args.data_root), Path(args.out), device=args.device)
    print(f"{args.source}: {meta['feature_set']} features, {meta['feature_dim']} dimensions", file=sys.stderr)


def cmd_svm_trials(args) -> None:
    import torch

    from ali.config import load_config
    from ali.experiments import svm

    torch.set_num_threads(args.threads)
    s = json.loads(args.settings) if args.settings else svm.settings(load_config(args.configfile))
    r = svm.run_trials(Path(args.features), s, Path(args.out), device=args.device)
    errors = [t["error_pct"] for t in r["trials"]]
    print(f"C = {r['C']:.4g}; test error {sum(errors) / len(errors):.2f}% over {len(errors)} trials", file=sys.stderr)


def cmd_table1(args) -> None:
    import pandas as pd

    from ali.report.tables import svm_trials_frame, table1_svm_rows

    trials = svm_trials_frame([Path(p) for p in args.svm])
    Path(args.out_trials).parent.mkdir(parents=True, exist_ok=True)
    trials.to_csv(args.out_trials, index=False)
    parts = [table1_svm_rows(trials)] + [pd.read_csv(p) for p in args.extra_rows]
    table = pd.concat(parts, ignore_index=True)
    for col in ("feature_dim", "n_labelled", "n_trials", "n_diverged"):
        if col in table:
            table[col] = table[col].astype("Int64")  # integers stay integers beside the K+1 rows' blanks
    table.to_csv(args.out_table, index=False)


def cmd_semisup_evaluate(args) -> None:
    import torch

    from ali.experiments import semisup
    from ali.train import resolve_device

    torch.set_num_threads(args.threads)
    _write_json(Path(args.out), semisup.evaluate_run(Path(args.run_dir), Path(args.data_root),
                                                     resolve_device(args.device)))


def cmd_semisup_report(args) -> None:
    from ali.report.tables import semisup_runs_frame, table1_kplus1_rows, table2_rows

    runs = semisup_runs_frame([Path(d) for d in args.run_dirs])
    outputs = [(args.out_runs, lambda: runs), (args.out_table2, lambda: table2_rows(runs, args.table2_dataset)),
               (args.out_table1_rows, lambda: table1_kplus1_rows(runs, args.table1_dataset, args.table1_labels))]
    if not any(path for path, _ in outputs):
        raise SystemExit("error: give at least one of --out-runs, --out-table2, --out-table1-rows")
    for path, frame in outputs:
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            frame().to_csv(path, index=False)


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ali", description="Reproduce Adversarially Learned Inference "
                                "(Dumoulin et al., ICLR 2017): train, evaluate, tabulate.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("plan", help="list the training runs a config defines", description="A preset (config/paper.yaml, or another merged on top of it) expands into every training run: seeds, learning rates, Adam betas in PyTorch's convention, init std, batch size and steps.")
    s.add_argument("--configfile", required=True, help="preset YAML, e.g. config/paper.yaml")
    s.add_argument("--json", action="store_true", help="print the full run specs as JSON")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("train", help="train one run (resumes from its checkpoint if one exists)", description="Writes checkpoint.pt every --checkpoint-every steps and resumes from it when run again; a NaN/inf loss stops the run and records it as diverged (exit 0), it is never retried silently.")
    s.add_argument("--out", required=True, help="run directory (checkpoint, model.pt, record.json)")
    s.add_argument("--spec", help="run spec as JSON (what the workflow passes)")
    s.add_argument("--configfile", help="preset YAML (with --run, instead of --spec)")
    s.add_argument("--run", help="run key from `ali plan`, e.g. fixed/ali/run0")
    s.add_argument("--best", help="best.json of the protocol (inverse mapping and post-hoc need the best GAN)")
    s.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda[:N] (default auto)")
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: small MLPs)")
    s.add_argument("--data-root", default="data", help="dataset directory (image runs; default data)")
    s.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (mixture 10000, images 2000)")
    s.add_argument("--log-every", type=int, help="steps between progress lines (mixture 1000, images 100)")
    s.add_argument("--no-progress", action="store_true", help="no progress output")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="mode coverage and inference metrics of one trained run", description="The paper's mode count (10,000 samples), the VEEGAN/PacGAN metrics (2,500 samples within 3 std) and, for models with an encoder, reconstruction and q(z)-vs-p(z) metrics on the held-out set.")
    s.add_argument("--run-dir", required=True)
    s.add_argument("--out", required=True, help="metrics JSON to write")
    s.add_argument("--eval", help="evaluation settings as JSON (what the workflow passes)")
    s.add_argument("--configfile", help="preset YAML (instead of --eval)")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("best", help="pick the best-covering ALI and GAN runs of one protocol", description="Order: most modes, then strict modes, % high quality, lower reverse KL (our choice of tie-break). The inference baselines train on that GAN.")
    s.add_argument("--metrics", nargs="+", required=True, help="metrics.json of each ALI and GAN run")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_best)

    s = sub.add_parser("mixture-report", help="write mixture_runs.csv and mixture.csv", description="The tidy per-run table, and the per-protocol-and-model summary with the paper's and PacGAN's numbers in columns named as theirs.")
    s.add_argument("--run-dirs", nargs="+", required=True)
    s.add_argument("--out-runs", required=True)
    s.add_argument("--out-table", required=True)
    s.set_defaults(func=cmd_mixture_report)

    s = sub.add_parser("figure8", help="the paper's Figure 8 from the best ALI and the baselines", description="Rows: data, latent codes, reconstructions, prior samples, generator samples; columns ALI, inverse mapping, post-hoc inference, VAE.")
    s.add_argument("--best", required=True)
    s.add_argument("--baselines", nargs="*", default=[], help="run directories of inverse, posthoc, vae")
    s.add_argument("--out", required=True)
    s.add_argument("--title", default="Figure 8")
    s.set_defaults(func=cmd_figure8)
    s = sub.add_parser("download", help="download and verify one dataset (run where there is internet)",
                       description="Uses torchvision's own download code, then "
                                   "verifies every split's MD5. Idempotent: verified files are kept.")
    s.add_argument("dataset", choices=["svhn", "cifar10", "celeba", "tiny_imagenet", "digits"])
    s.add_argument("--root", default="data", help="data directory (default data)")
    s.add_argument("--flag", help="file to write once everything is verified (for the workflow)")
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("image-figures", help="samples, reconstructions and interpolations of an image run",
                       description="Figures 2-6: --kind samples draws from p(z); "
                                   "--kind inference shows held-out reconstructions (odd columns data, even "
                                   "columns reconstructions) and latent interpolations between held-out pairs.")
    s.add_argument("--run-dir", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--kind", choices=["samples", "inference"], default="samples")
    s.add_argument("--data-root", default="data")
    s.add_argument("--n-samples", type=int, default=100)
    s.add_argument("--n-reconstructions", type=int, default=50)
    s.add_argument("--n-interpolations", type=int, default=8)
    s.add_argument("--interpolation-steps", type=int, default=10)
    s.add_argument("--seed", type=int, default=5)
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_image_figures)
    s = sub.add_parser("svm-features", help="SVM-pool, validation and test features of one model",
                       description="Features are read in inference mode (BN population statistics); the "
                                   "layers follow svm.features (default: the released script's).")
    s.add_argument("--source", required=True, choices=["ali", "vae", "gan", "raw"])
    s.add_argument("--run-dir", help="the trained image run (not needed for raw pixels)")
    s.add_argument("--out", required=True, help="features file (.pt) to write")
    s.add_argument("--settings", help="svm settings as JSON (what the workflow passes)")
    s.add_argument("--configfile", help="preset YAML (instead of --settings)")
    s.add_argument("--data-root", default="data")
    s.add_argument("--device", default="auto")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_svm_features)

    s = sub.add_parser("svm-trials", help="the released L2-SVM protocol on saved features",
                       description="C is chosen on the validation rows with one class-balanced labelled "
                                   "draw; then n_trials fresh draws are each scored on the whole test split.")
    s.add_argument("--features", required=True)
    s.add_argument("--out", required=True, help="trials JSON to write")
    s.add_argument("--settings", help="svm settings as JSON (what the workflow passes)")
    s.add_argument("--configfile", help="preset YAML (instead of --settings)")
    s.add_argument("--device", default="auto")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_svm_trials)

    s = sub.add_parser("table1", help="write svm_trials.csv and table1.csv",
                       description="One row per model x trial, and Table 1's rows with the paper's numbers "
                                   "in columns named as the paper's.")
    s.add_argument("--svm", nargs="*", default=[], help="trials JSON of each source")
    s.add_argument("--extra-rows", nargs="*", default=[], help="CSV rows to append (the K+1 rows)")
    s.add_argument("--out-trials", required=True)
    s.add_argument("--out-table", required=True)
    s.set_defaults(func=cmd_table1)

    s = sub.add_parser("semisup-evaluate", help="test error of one K+1 run",
                       description="The reported error uses the Polyak-averaged weights (improved-gan); the "
                                   "error with the last weights is recorded beside it.")
    s.add_argument("--run-dir", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--data-root", default="data")
    s.add_argument("--device", default="auto")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_semisup_evaluate)

    s = sub.add_parser("semisup-report", help="write semisup_runs.csv, table2.csv and Table 1's K+1 rows",
                       description="Our mean, sigma and 3 sigma over seeds beside the paper's numbers "
                                   "(Table 2's error bars are 3 sigma, Table 1's are 1 sigma).")
    s.add_argument("--run-dirs", nargs="+", required=True)
    s.add_argument("--out-runs", help="semisup_runs.csv to write")
    s.add_argument("--out-table2", help="table2.csv to write")
    s.add_argument("--out-table1-rows", help="Table 1's K+1 rows (CSV) to write")
    s.add_argument("--table2-dataset", default="cifar10")
    s.add_argument("--table1-dataset", default="svhn")
    s.add_argument("--table1-labels", type=int, default=1000)
    s.set_defaults(func=cmd_semisup_report)

    for action in sub._choices_actions:  # each command's --help opens with its one-line summary
        command = sub.choices[action.dest]
        command.description = f"{action.help}. {command.description or ''}".strip()
    return p


def main(argv: list[str] | None = None) -> int:
    from ali.config import ConfigError
    from ali.data.images import DatasetMissingError
    from ali.train import CheckpointError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, CheckpointError, DatasetMissingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
