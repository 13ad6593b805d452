"""``ali doctor``: one self-check of every training path on this machine, through the public CLI.

Every path runs once as a user runs it (``python -m ali plan/train/evaluate/report`` in a subprocess,
on tiny configs written to a temporary directory), so the check needs only PyTorch, torchvision,
numpy, scikit-learn, pandas, matplotlib and PyYAML: no Snakemake, no installed package
(``PYTHONPATH=. python3 -m ali doctor``). On CUDA it then checks what only a GPU can show: a captured
run against an eager one, kill-and-resume under capture, a forced capture failure falling back to
eager, no precision leaking into a later fp32 run, the CUDA-only tests and the benchmarks.

It prints one PASS/FAIL/SKIP line per check, writes the rates it measured to
``results/rates/<device>.json`` (``ali plan --cost`` reads those marked ``scale: paper``) and exits
non-zero on any FAIL. ``--quick`` (CPU CI) trains only the mixture paths and SVM raw features.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NEEDED = ("torch", "torchvision", "numpy", "sklearn", "pandas", "matplotlib", "yaml")
MIXTURE_TARGET = 20_000  # issue 15: run-steps/s of a 40-run fp32 group on one H100/H200

# Runs the CLI's main() in this process with what a check needs first: deterministic cuDNN (so equal
# inputs give equal outputs), a capture that always fails, and the global math flags after training.
CLI_SHIM = """\
import json, os, sys
import torch
if os.environ.get("DOCTOR_DETERMINISTIC"):
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
if os.environ.get("DOCTOR_FAIL_CAPTURE"):  # every capture fails as it starts, before touching a stream
    def refuse(self):
        raise RuntimeError("capture refused by ali doctor (forced failure)")
    torch.cuda.graph.__enter__ = refuse
def flags():
    return {"matmul": torch.backends.cuda.matmul.fp32_precision, "conv": torch.backends.cudnn.conv.fp32_precision,
            "autocast": torch.is_autocast_enabled("cuda")}
before = flags()
from ali.cli import main
code = main(sys.argv[1:])
if os.environ.get("DOCTOR_FLAGS"):
    open(os.environ["DOCTOR_FLAGS"], "w").write(json.dumps({"before": before, "after": flags()}))
sys.exit(code)
"""


class Failed(Exception):
    """A check's finding: the one line its FAIL prints."""


@dataclass
class Check:
    status: str  # PASS | FAIL | SKIP
    name: str
    detail: str
    seconds: float = 0.0


@dataclass
class Doctor:
    work: Path
    device: str  # cpu | cuda
    quick: bool
    checks: list[Check] = field(default_factory=list)
    rates: list[dict] = field(default_factory=list)
    specs: dict[str, dict] = field(default_factory=dict)  # the tiny config's plan
    deadline: float = float("inf")  # time.monotonic() after which the remaining checks are skipped

    # ------------------------------------------------------------------------------------ plumbing
    def run(self, name: str, fn: Callable[[], str], skip: str | None = None) -> None:
        """One check: PASS with ``fn``'s detail, FAIL with what it raised, or SKIP with ``skip``."""
        if not skip and time.monotonic() > self.deadline:
            skip = "the time budget (--budget) is spent"
        if skip:
            self.checks.append(Check("SKIP", name, skip))
        else:
            t0 = time.perf_counter()
            try:
                status, detail = "PASS", fn()
            except Failed as err:
                status, detail = "FAIL", str(err)
            except Exception as err:  # a bug in a path is a FAIL of that check, not the end of the rest
                status, detail = "FAIL", f"{type(err).__name__}: {err}"
            self.checks.append(Check(status, name, detail, time.perf_counter() - t0))
        c = self.checks[-1]
        print(f"{c.status:<4} {c.name}: {c.detail}" + (f" ({c.seconds:.0f}s)" if c.seconds >= 1 else ""), flush=True)

    def cli(self, *args: str, env: dict | None = None, timeout: int = 300, shim: bool = False) -> str:
        """``python -m ali ARGS`` (or through the shim) from the repository root; its stderr on success."""
        cmd = [sys.executable, *(["-c", CLI_SHIM] if shim else ["-m", "ali"]), *args]
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=self.env(env))
        if out.returncode != 0:
            tail = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise Failed(f"`ali {' '.join(args[:2])}` exited {out.returncode}: {tail[:300]}")
        return out.stdout

    def env(self, extra: dict | None = None) -> dict:
        path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
                **(extra or {})}

    def config(self, name: str, **overrides) -> Path:
        """A tiny preset (JSON, which YAML reads) merged onto the paper preset, like any --configfile."""
        path = self.work / f"{name}.yaml"
        path.write_text(json.dumps(tiny_config(self.device, **overrides)))
        return path

    def plan(self, cfg: Path) -> dict[str, dict]:
        return json.loads(self.cli("plan", "--configfile", str(cfg), "--json"))

    def train(self, specs: Sequence[dict], dirs: Sequence[Path], *extra: str, **kw) -> list[dict]:
        """Trains ``specs`` as one job (one group, or one after another) and returns their records."""
        self.cli("train", "--spec", json.dumps(list(specs)), "--out", *map(str, dirs), "--device", self.device,
                 "--no-progress", "--data-root", str(self.work / "data"), *extra, **kw)
        return [finished(d, s) for s, d in zip(specs, dirs)]

    def rate(self, records: list[dict], experiment: str, model: str, what: str, **fields) -> float:
        """Run-steps/s of one job from its records (wall time of the group) as a tiny-scale rate."""
        wall = max(r["wall_time_s"] for r in records)
        value = sum(r["steps_done"] for r in records) / max(wall, 1e-9)
        self.rates.append({"experiment": experiment, "model": model, "value": value, "scale": "tiny",
                           "group_size": len(records), "unit": "run-steps/s" if experiment == "mixture" else "steps/s",
                           "what": what, **fields})
        return value

    # -------------------------------------------------------------------------------- the paths
    def mixture_paths(self) -> None:
        cfg = self.config("tiny")
        plan = self.specs
        dirs = {k: self.work / "mixture" / k for k in ("random/ali/run0", "random/ali/run1", "random/gan/run0",
                                                       "random/gan/run1")}

        def plan_check() -> str:
            plan.update(self.plan(cfg))
            need = [*dirs, "random/inverse/run0", "random/posthoc/run0", "random/vae/run0"]
            missing = [k for k in need if k not in plan]
            if missing:
                raise Failed(f"plan lacks {missing}")
            return f"{len(plan)} runs planned"

        self.run("plan (tiny config)", plan_check)
        if not plan:
            return
        for model in ("ali", "gan"):
            for update in ("simultaneous", "alternating"):
                keys = [k for k in dirs if f"/{model}/" in k]
                specs = [{**plan[k], "update": update} for k in keys]
                out = [self.work / "mixture" / update / k for k in keys]

                def group(specs=specs, out=out, model=model, update=update) -> str:
                    records = self.train(specs, out)
                    rate = self.rate(records, "mixture", model, f"tiny mixture group, {update}")
                    return f"group of {len(specs)}, {records[0].get('engine', '?')}, {rate:,.0f} run-steps/s"

                self.run(f"mixture {model.upper()} group, {update}", group)
        self.run("mixture evaluate + best", lambda: self.evaluate_and_best(cfg, dirs))
        self.run("mixture baselines (inverse, posthoc, vae)", lambda: self.baselines(plan))

    def evaluate_and_best(self, cfg: Path, dirs: dict[str, Path]) -> str:
        runs = [self.work / "mixture" / "simultaneous" / k for k in dirs]
        self.cli("evaluate", "--run-dir", *map(str, runs), "--configfile", str(cfg))
        metrics = [json.loads((d / "metrics.json").read_text()) for d in runs]
        best = self.work / "mixture" / "best.json"
        self.cli("report", "best", "--in", *[f"metrics={d / 'metrics.json'}" for d in runs], "--out", f"best={best}")
        chosen = json.loads(best.read_text())
        if chosen.get("gan") is None:
            raise Failed(f"best.json names no GAN run: {chosen}")
        return f"modes {[m.get('modes') for m in metrics]}; best GAN {Path(chosen['gan']).name}"

    def baselines(self, plan: dict) -> str:
        keys = ["random/inverse/run0", "random/posthoc/run0", "random/vae/run0"]
        out = [self.work / "mixture" / k for k in keys]
        records = self.train([plan[k] for k in keys], out, "--in", f"best={self.work / 'mixture' / 'best.json'}")
        self.cli("evaluate", "--run-dir", *map(str, out), "--configfile", str(self.work / "tiny.yaml"))
        for key, r in zip(keys, records):
            self.rate([r], "mixture", key.split("/")[1], "tiny mixture baseline")
        return ", ".join(f"{k.split('/')[1]} {r['steps_done']} steps" for k, r in zip(keys, records))

    def image_paths(self) -> None:
        skip = "--quick: a conv step takes seconds on one core" if self.quick else None
        plan = self.specs
        img_dir = self.work / "images"

        def images() -> str:
            keys = [f"digits/{m}/seed0" for m in ("ali", "gan", "vae")]
            records = self.train([plan[k] for k in keys], [img_dir / k for k in keys])
            for k, r in zip(keys, records):
                self.rate([r], "images", k.split("/")[1], "tiny image run (digits, SVHN architecture)", arch="svhn")
            return ", ".join(f"{k.split('/')[1]} {r['steps_done']} steps ({r.get('engine', '?')})"
                             for k, r in zip(keys, records))

        def kplus1() -> str:
            keys = [f"digits/{m}/labels50/seed0" for m in ("ali_kplus1", "gan_fm")]
            out = [self.work / "semisup" / k for k in keys]
            self.train([plan[k] for k in keys], out)
            self.cli("evaluate", "--run-dir", *map(str, out), "--device", self.device,
                     "--data-root", str(self.work / "data"))
            errors = [json.loads((d / "metrics.json").read_text())["test_error_pct"] for d in out]
            return "test error " + ", ".join(f"{k.split('/')[1]} {e:.1f}%" for k, e in zip(keys, errors))

        self.run("images ALI, GAN, VAE", images, skip)
        self.run("K+1 ALI and GAN-FM, train + evaluate", kplus1, skip)
        self.run("SVM features (every source) + trials" if not self.quick else "SVM features (raw pixels)",
                 lambda: self.svm_features(plan))

    def svm_features(self, plan: dict) -> str:
        sources = ["raw"] if self.quick else ["raw", "ali", "vae", "gan"]
        dims = []
        for source in sources:
            out = self.work / "svm" / source
            image_run = ["--in", f"run={self.work / 'images' / 'digits' / source / 'seed0'}"] if source != "raw" else []
            (key,) = [k for k, spec in plan.items() if k.startswith(f"svm/digits/{source}/") and spec["seed"] == 0]
            self.train([plan[key]], [out], *image_run)
            dims.append(f"{source} {self.feature_dim(out)}")
        if not self.quick:
            self.cli("evaluate", "--run-dir", str(self.work / "svm" / "ali"), "--device", self.device)
        return "feature dims " + ", ".join(dims) + ("" if self.quick else "; ALI trials run")

    @staticmethod
    def feature_dim(run_dir: Path) -> int:
        import torch

        blob = torch.load(run_dir / "features.pt", map_location="cpu", weights_only=True)
        return int(blob["features"]["pool"].shape[1])

    # ------------------------------------------------------------------------------ CUDA only
    def cuda_paths(self) -> None:
        skip = None if self.device == "cuda" else "no CUDA device on this machine"
        cfg = self.config("long", epochs=100)  # 2,000 steps: long enough to kill mid-way
        plan = self.plan(cfg) if not skip else {}
        keys = ["random/ali/run0", "random/ali/run1"]
        root = self.work / "cuda"

        def mixture(capture: str, name: str, *extra: str, **kw) -> list[dict]:
            specs = [plan[k] for k in keys]  # capture is the run context's (--capture), never the spec's
            return self.train(specs, [root / name / k for k in keys], "--capture", capture, "--checkpoint-every", "200",
                              *extra, **kw)

        def captured_vs_eager() -> str:
            eager, captured = mixture("off", "eager"), mixture("on", "captured")
            engines = (eager[0].get("engine"), captured[0].get("engine"))
            if "captured" not in str(engines[1]):
                raise Failed(f"capture on trained with engine {engines[1]!r}")
            for name, records in (("eager", eager), ("captured", captured)):
                self.rate(records, "mixture", "ali", f"tiny mixture group, {name}")
            diff = max_difference([root / "eager" / k for k in keys], [root / "captured" / k for k in keys])
            if diff != 0.0:
                raise Failed(f"captured and eager groups differ: max |diff| {diff:.3g} (engines {engines})")
            return f"bit-identical after 2,000 steps ({engines[1]} vs {engines[0]})"

        def kill_and_resume() -> str:
            stopped = self.interrupt([plan[k] for k in keys], [root / "killed" / k for k in keys])
            records = mixture("on", "killed")
            if not records[0].get("resumed_from_step"):
                raise Failed(f"the rerun did not resume ({stopped}); record: {records[0].get('resumed_from_step')}")
            diff = max_difference([root / "captured" / k for k in keys], [root / "killed" / k for k in keys])
            if diff != 0.0:
                raise Failed(f"resumed run differs from the uninterrupted one: max |diff| {diff:.3g}")
            return f"{stopped}, resumed from step {records[0]['resumed_from_step']}: bit-identical to the uninterrupted run"

        def forced_failure() -> str:
            records = mixture("on", "fallback", env={"DOCTOR_FAIL_CAPTURE": "1"}, shim=True)
            engine = str(records[0].get("engine"))
            if "capture failed" not in engine:
                raise Failed(f"a refused capture gave engine {engine!r}")
            diff = max_difference([root / "eager" / k for k in keys], [root / "fallback" / k for k in keys])
            if diff != 0.0:
                raise Failed(f"fell back ({engine}) but differs from the eager run: max |diff| {diff:.3g}")
            image = self.image_fallback()
            return f"mixture: {engine[:60]}..., equal to eager; images: {image}"

        self.run("CUDA mixture group captured vs eager", captured_vs_eager, skip)
        self.run("CUDA kill-and-resume under capture", kill_and_resume, skip)
        self.run("CUDA forced capture failure falls back to eager", forced_failure, skip)
        self.run("CUDA image capture and precisions", self.image_precisions, skip)
        has_pytest = importlib.util.find_spec("pytest") is not None
        self.run("CUDA-only tests (tests/test_train_capture_cuda.py)", self.cuda_tests,
                 skip or (None if has_pytest else "pytest is not installed"))

    def interrupt(self, specs: list[dict], dirs: list[Path]) -> str:
        """Stops a captured group mid-way: ``--stop-at`` if the CLI has it, else SIGKILL once its first
        checkpoint is on disk."""
        cmd = [sys.executable, "-m", "ali", "train", "--spec", json.dumps(specs), "--out", *map(str, dirs),
               "--device", "cuda", "--capture", "on", "--no-progress", "--checkpoint-every", "200"]
        helped = subprocess.run([*cmd[:3], "--help"], cwd=REPO, capture_output=True, text=True, env=self.env())
        if "--stop-at" in helped.stdout:
            subprocess.run([*cmd, "--stop-at", "1000"], cwd=REPO, capture_output=True, env=self.env(), timeout=300)
            return "stopped by --stop-at 1000"
        run_dir = dirs[0]
        proc = subprocess.Popen(cmd, cwd=REPO, env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (run_dir / "record.json").exists():
            raise Failed("the run finished before it could be killed; nothing was resumed")
        return "killed (SIGKILL) after its first checkpoint"

    def image_fallback(self) -> str:
        spec = self.specs["digits/ali/seed0"]
        out = self.work / "cuda" / "images_fallback"
        (record,) = self.train([spec], [out], "--capture", "on", env={"DOCTOR_FAIL_CAPTURE": "1", "DOCTOR_DETERMINISTIC": "1"}, shim=True)
        if "capture failed" not in str(record.get("engine")):
            raise Failed(f"a refused image capture gave engine {record.get('engine')!r}")
        return str(record["engine"])[:60] + "..."

    def image_precisions(self) -> str:
        """Eager and captured fp32 image runs in one job; tf32 and bf16 then fp32 in another: the two
        captured fp32 runs must be equal (no precision leaks) and equal to eager fp32."""
        base = self.specs["digits/ali/seed0"]
        root = self.work / "cuda" / "images"
        det = {"DOCTOR_DETERMINISTIC": "1"}
        first = [*self.train([base], [root / "eager"], "--capture", "off", env=det, shim=True),
                 *self.train([base], [root / "captured"], "--capture", "on", env=det, shim=True)]
        flags = root / "flags.json"
        second = self.train([{**base, "precision": "tf32"}, {**base, "precision": "bf16"}, base],
                            [root / "tf32", root / "bf16", root / "after"], "--capture", "on",
                            env={**det, "DOCTOR_FLAGS": str(flags)}, shim=True)
        for r in first + second:
            self.rate([r], "images", "ali", f"tiny image run, {r.get('precision')} {r.get('engine')}", arch="svhn",
                      precision=r.get("precision", "fp32"))
        state = json.loads(flags.read_text())
        if state["before"] != state["after"]:
            raise Failed(f"math flags changed by training: {state['before']} -> {state['after']}")
        leak = max_difference([root / "captured"], [root / "after"])
        if leak != 0.0:
            raise Failed(f"fp32 after tf32/bf16 differs from fp32 alone: max |diff| {leak:.3g}")
        vs_eager = max_difference([root / "eager"], [root / "captured"])
        if vs_eager != 0.0:
            raise Failed(f"captured fp32 differs from eager fp32: max |diff| {vs_eager:.3g}")
        return (f"captured = eager bit for bit; fp32 after tf32 and bf16 = fp32 alone; flags restored "
                f"({first[1].get('engine')})")

    def cuda_tests(self) -> str:
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "tests/test_train_capture_cuda.py"], cwd=REPO, capture_output=True, text=True,
                             timeout=400, env=self.env())
        last = (out.stdout.strip().splitlines() or ["(no output)"])[-1]
        if out.returncode != 0:
            raise Failed(last)
        return last

    # -------------------------------------------------------------------------------- benchmarks
    def benchmarks(self) -> None:
        skip = "--quick" if self.quick else None
        sizes = ["1", "10", "40"] if self.device == "cuda" else ["1", "10"]
        steps = "20" if self.device == "cuda" else "5"
        for model in ("ali", "gan"):
            self.run(f"benchmark: mixture {model.upper()} group step (paper-scale nets)",
                     lambda model=model: self.bench_mixture(model, sizes, steps), skip)
        self.run("benchmark: image steps (paper architectures)", self.bench_images, skip)

    def bench_mixture(self, model: str, sizes: list[str], steps: str) -> str:
        cmd = ["benchmarks/bench_mixture_step.py", "--model", model, "--device", self.device, "--sizes", *sizes,
               "--steps", steps, "--repeats", "3" if self.device == "cuda" else "1"]
        text = self.script(cmd)
        rows = {}
        for m in re.finditer(r"^engine (eager|captured), group of (\d+)\s+([\d.]+)\s+\S+\s+\S+\s+([\d.]+%|-)", text, re.M):
            engine, size, rate, floor = m.group(1), int(m.group(2)), float(m.group(3)), m.group(4)
            rows[engine, size] = (rate, floor)
            trained = engine == ("captured" if self.device == "cuda" else "eager")
            self.rates.append({"experiment": "mixture", "model": model, "value": rate, "scale": "paper" if trained else
                               "paper-other-engine", "group_size": size, "precision": "fp32", "engine": engine,
                               "unit": "run-steps/s", "what": "python " + " ".join(cmd)})
        if not rows:
            raise Failed(f"no rates in the benchmark's output: {text[-200:]}")
        engine = "captured" if self.device == "cuda" else "eager"
        top = max(s for e, s in rows if e == engine) if self.device == "cuda" else 1  # CPU jobs train alone
        rate, floor = rows[engine, top]
        detail = f"{engine} group of {top}: {rate:,.0f} run-steps/s ({floor} of floor)"
        if self.device == "cuda" and top >= 40:
            detail += f"; target {MIXTURE_TARGET:,} at 40 runs {'met' if rate >= MIXTURE_TARGET else 'MISSED'}"
        return detail

    def bench_images(self) -> str:
        on_gpu = self.device == "cuda"  # on CPU one architecture, one step: a step takes about a second
        cmd = ["benchmarks/bench_image_step.py", "--device", self.device, "--arch", "svhn",
               *(["cifar10"] if on_gpu else []), "--steps", "10" if on_gpu else "1", "--repeats", "3" if on_gpu else "1"]
        text = self.script(cmd, timeout=420)
        as_trained = ({"captured (fused, capturable Adam)": "fp32", "tf32": "tf32", "bf16 autocast": "bf16"}
                      if self.device == "cuda" else {"eager fp32, default Adam (baseline)": "fp32"})
        found = []
        arch = model = None
        for line in text.splitlines():
            head = re.match(r"^(\w+) \(Table \d\) (\w+): ([\d.]+) GFLOP per step \(batch (\d+)\)", line)
            if head:
                arch, model, batch = head.group(1), head.group(2).lower(), int(head.group(4))
                continue
            name = line[2:40].strip()
            if arch and line.startswith("  ") and name in as_trained:
                images_per_s = float(line[63:].split()[0])
                self.rates.append({"experiment": "images", "model": model, "arch": arch, "value": images_per_s / batch,
                                   "scale": "paper", "precision": as_trained[name], "batch_size": batch,
                                   "unit": "steps/s", "what": f"python {' '.join(cmd)}: {name}"})
                found.append(f"{arch} {model} {as_trained[name]} {images_per_s / batch:.2f}")
        if not found:
            raise Failed(f"no rates in the benchmark's output: {text[-200:]}")
        return "steps/s: " + ", ".join(found)

    def script(self, cmd: list[str], timeout: int = 300) -> str:
        out = subprocess.run([sys.executable, *cmd], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                             env=self.env())
        if out.returncode != 0:
            raise Failed(f"{cmd[0]} exited {out.returncode}: {(out.stderr.strip().splitlines() or [''])[-1][:300]}")
        return out.stdout


# ------------------------------------------------------------------------------------------ helpers
def tiny_config(device: str, epochs: int = 1) -> dict:
    """The smallest preset that runs every path: tiny mixture nets, digits at minimal budgets."""
    conv_batch = 100 if device == "cuda" else 600  # CPU: a conv step costs about a second per 100 images
    protocol = {"n_runs": 1, "epochs": 1, "baselines": False}
    return {
        "preset": "doctor",
        "mixture": {"data": {"n_train": 2000, "n_heldout": 500}, "nets": {"gen_hidden": 32, "disc_hidden": 16},
                    "train": {"epochs": epochs, "batch_size": 100},
                    "protocols": {"random": {"kind": "random", "n_runs": 2},
                                  "fixed": {"kind": "fixed", **protocol}, "pacgan": {"kind": "pacgan", **protocol}},
                    "baselines": {"epochs": 1},
                    "eval": {"n_samples": 1000, "n_strict_samples": 500, "mmd_samples": 200},
                    "device": device},
        "images": {"train": ["digits"], "device": device,
                   "datasets": {"digits": {"arch": "svhn", "heldout_split": "test", "epochs": 1,
                                           "batch_size": conv_batch}}},
        "svm": {"dataset": "digits", "n_per_class": 10, "n_trials": 2, "c_grid": {"log_low": -5, "log_high": 5, "n": 3}},
        "semisup": {"train": ["digits"], "seeds": [0], "batch_size": conv_batch,
                    "polyak_rate": 0.1, "device": device, "table2_dataset": "digits",
                    "table1": {"dataset": "digits", "labels": 50},
                    "datasets": {"digits": {"arch": "svhn", "labels": [50], "epochs": 1, "decay_epochs": 1,
                                            "test_split": "test"}}},
    }


def finished(run_dir: Path, spec: dict) -> dict:
    """A run's record, which must say it trained every step of its spec."""
    path = Path(run_dir) / "record.json"
    if not path.exists():
        raise Failed(f"no record.json in {run_dir}")
    record = json.loads(path.read_text())
    if record.get("status") != "ok":
        raise Failed(f"{run_dir.name}: status {record.get('status')!r}")
    if spec.get("steps") is not None and record.get("steps_done") != spec["steps"]:
        raise Failed(f"{run_dir}: {record.get('steps_done')} of {spec['steps']} steps")
    return record


def max_difference(dirs_a: Sequence[Path], dirs_b: Sequence[Path]) -> float:
    """The largest |a - b| over every tensor of the runs' model.pt (0.0: bit-identical)."""
    import torch

    worst = 0.0
    for a, b in zip(dirs_a, dirs_b):
        sa, sb = (torch.load(Path(d) / "model.pt", map_location="cpu", weights_only=True) for d in (a, b))
        if sa.keys() != sb.keys():
            raise Failed(f"{a} and {b} hold different tensors")
        for k in sa:
            if not torch.equal(sa[k], sb[k]):
                worst = max(worst, (sa[k].double() - sb[k].double()).abs().max().item() if sa[k].is_floating_point()
                            else float("inf"))
    return worst


def device_kind(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if device.startswith("cuda") else "cpu"


def device_label(kind: str) -> str:
    import torch

    return torch.cuda.get_device_name() if kind == "cuda" else f"cpu {platform.processor() or platform.machine()}"


def write_rates(doctor: Doctor, out_dir: Path) -> Path:
    """results/rates/<device>.json: every rate measured, with torch version, device, date and code version."""
    import torch

    from ali.provenance import code_version
    from ali.train.files import write_text

    label = device_label(doctor.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".json")
    doc = {"device": label, "kind": doctor.device, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
           "code_version": code_version(), "quick": doctor.quick, "threads": torch.get_num_threads(),
           "rates": doctor.rates,
           "note": "scale 'paper': the benchmarks' paper-scale nets, as `ali train` runs them (ali plan --cost "
                   "reads these); 'tiny': the self-check's tiny configs, for comparison only"}
    write_text(path, json.dumps(doc, indent=2))
    return path


def missing_packages() -> list[str]:
    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def main(device: str = "auto", quick: bool = False, out: Path = Path("results/rates"), keep: bool = False,
         budget: float = 480.0) -> int:
    """Runs every check (those that would start after ``budget`` seconds are skipped), prints the
    summary, writes the rates; 1 if anything failed."""
    missing = missing_packages()
    if missing:
        print(f"FAIL environment: missing {missing} (import names); pip install torch torchvision numpy scikit-learn "
              f"pandas matplotlib pyyaml")
        return 1
    import torch

    kind = device_kind(device)
    work = Path(tempfile.mkdtemp(prefix="ali-doctor-"))
    doctor = Doctor(work, kind, quick, deadline=time.monotonic() + budget)
    t0 = time.perf_counter()
    print(f"ali doctor on {device_label(kind)} (torch {torch.__version__}, {'quick' if quick else 'full'}); "
          f"work in {work}", flush=True)
    try:
        doctor.mixture_paths()
        doctor.image_paths()
        doctor.cuda_paths()
        doctor.benchmarks()
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    path = write_rates(doctor, out)
    counts = {s: sum(c.status == s for c in doctor.checks) for s in ("PASS", "FAIL", "SKIP")}
    print(f"\nsummary on {device_label(kind)} in {time.perf_counter() - t0:.0f}s: "
          + ", ".join(f"{n} {s}" for s, n in counts.items()) + f"; rates in {path}")
    for c in doctor.checks:
        if c.status == "FAIL":
            print(f"  {c.status} {c.name}: {c.detail}")
    return 1 if counts["FAIL"] else 0
