"""Images per second of one ALI, GAN and VAE training step of an appendix architecture, as ratios to
the eager fp32 step, all measured in one run (round-robin repeats, median per configuration).

    python benchmarks/bench_image_step.py [--arch svhn cifar10] [--batch 100] [--steps 10] [--device cuda]

Configurations: eager fp32 with PyTorch's default Adam (the baseline), fused Adam, the whole step
captured in a CUDA graph, TF32, bf16 autocast, bf16 + channels-last, and all of them together;
those that need CUDA are skipped elsewhere, with a line saying so. Each step runs exactly as in
``ali.train`` (``ali.train.graph.StepRunner``, ``fp32_math``); a capture that fails is reported.

The floor: the step's FLOPs (``torch.utils.flop_counter``: convolutions and matmuls, forward and
backward) over the device's peak. On CPU the peak is a large fp32 matmul measured in the same run;
on CUDA it is NVIDIA's stated dense peak for the device and precision (datasheets: the "with
sparsity" tensor-core figures halved).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ali.experiments import images
from ali.models.base import AdamKernel, Model
from ali.nets.architectures import ARCHITECTURES
from ali.data.batches import as_model_input
from ali.train.graph import StepRunner
from ali.train.loop import SoloRun
from ali.train.runtime import fp32_math

MODELS = ("ali", "gan", "vae")
# NVIDIA datasheets (H100 SXM/PCIe, H200 SXM/NVL), FLOP/s: FP32 (no tensor cores), dense TF32 and BF16.
# The first matching name wins, so the more specific names come first.
STATED_PEAKS = (("H200 NVL", {"fp32": 60e12, "tf32": 417.5e12, "bf16": 835.5e12}),
                ("H200", {"fp32": 67e12, "tf32": 494.5e12, "bf16": 989.5e12}),
                ("H100 PCIe", {"fp32": 51e12, "tf32": 378e12, "bf16": 756.5e12}),
                ("H100", {"fp32": 67e12, "tf32": 494.5e12, "bf16": 989.5e12}))


@dataclass(frozen=True)
class Config:
    name: str
    precision: str = "fp32"
    channels_last: bool = False
    fused: bool = False
    capture: bool = False
    cuda_only: bool = False


CONFIGS = (Config("eager fp32, default Adam (baseline)"),
           Config("fused Adam", fused=True),
           Config("channels-last", channels_last=True),
           Config("captured (fused, capturable Adam)", fused=True, capture=True, cuda_only=True),
           Config("tf32", precision="tf32", fused=True, cuda_only=True),
           Config("bf16 autocast", precision="bf16", fused=True, cuda_only=True),
           Config("bf16 + channels-last", precision="bf16", channels_last=True, fused=True, cuda_only=True),
           Config("captured bf16 + channels-last", precision="bf16", channels_last=True, fused=True, capture=True,
                  cuda_only=True))


def spec_for(arch: str, model: str, cfg: Config) -> dict:
    return {"experiment": "images", "arch": arch, "model": model, "update": "simultaneous", "init_std": 0.01,
            "vae_likelihood": "bernoulli", "precision": cfg.precision, "channels_last": cfg.channels_last,
            "capture": "on" if cfg.capture else "off",
            "adam": {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "convention": "torch"}}


class Bench:
    """One model and its step runner, as the loop would run it for ``cfg``."""

    def __init__(self, arch: str, model: str, cfg: Config, batch: int, device: torch.device):
        torch.manual_seed(0)
        self.cfg, self.device, self.batch = cfg, device, batch
        self.model: Model = images.build(spec_for(arch, model, cfg)).to(device).train()
        self.model.use_adam_kernel(AdamKernel(fused=cfg.fused, capturable=cfg.capture))
        size = ARCHITECTURES[arch].image_size
        data = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
        self.inputs = {"x": as_model_input(data, cfg.channels_last)}
        with fp32_math(cfg.precision, device):
            solo = SoloRun(self.model, data, batch_size=batch, seed=0, run_dir=None)
            self.runner = StepRunner(solo.step, capture=cfg.capture, snapshot=solo.snapshot, restore=solo.restore,
                                     name=f"{model} training step")
            self.runner(self.inputs)  # warm-up (allocations, cuDNN choices)
        self.sync()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def images_per_second(self, steps: int) -> float:
        with fp32_math(self.cfg.precision, self.device):
            t0 = time.perf_counter()
            for _ in range(steps):
                self.runner(self.inputs)
            self.sync()
        return self.batch * steps / (time.perf_counter() - t0)


def step_flops(arch: str, model: str, batch: int) -> int:
    """FLOPs of one fp32 step (forward, both backward passes), counted on CPU: they depend only on shapes."""
    torch.manual_seed(0)
    m = images.build(spec_for(arch, model, CONFIGS[0])).train()
    x = torch.rand(batch, 3, ARCHITECTURES[arch].image_size, ARCHITECTURES[arch].image_size)
    with FlopCounterMode(display=False) as counter:
        m.train_step(x)
    return counter.get_total_flops()


def measured_cpu_peak(n: int = 2048, repeats: int = 3) -> float:
    """fp32 FLOP/s of an n x n matmul on this CPU with the current thread count (median of repeats)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times)


def stated_cuda_peak(device: torch.device, precision: str) -> tuple[float | None, str]:
    name = torch.cuda.get_device_name(device)
    for key, peaks in STATED_PEAKS:
        if key in name:
            return peaks[precision], f"{name}: NVIDIA's stated dense {precision} peak"
    return None, f"{name}: no stated peak known"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", nargs="+", default=["svhn", "cifar10"], choices=sorted(ARCHITECTURES))
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=10, help="timed steps per sample")
    p.add_argument("--repeats", type=int, default=5, help="round-robin rounds; the median is reported")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1: as `ali train` uses)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    configs = [c for c in CONFIGS if device.type == "cuda" or not c.cuda_only]
    skipped = [c.name for c in CONFIGS if c not in configs]
    cpu_peak = measured_cpu_peak() if device.type == "cpu" else None

    print(f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
          f"batch {args.batch}, median of {args.repeats} x {args.steps} timed steps, "
          f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    if skipped:
        print(f"skipped on {device.type} (CUDA only): {'; '.join(skipped)}")
    if cpu_peak is not None:
        print(f"CPU peak, measured: {cpu_peak / 1e9:.1f} GFLOP/s (2048 x 2048 fp32 matmul)")
    for arch in args.arch:
        for model in args.models:
            benches = {c: Bench(arch, model, c, args.batch, device) for c in configs}
            samples: dict[Config, list[float]] = {c: [] for c in configs}
            for _ in range(args.repeats):  # round robin: load elsewhere hits every configuration alike
                for c, bench in benches.items():
                    samples[c].append(bench.images_per_second(args.steps))
            flops = step_flops(arch, model, args.batch)
            print(f"\n{arch} ({ARCHITECTURES[arch].table}) {model.upper()}: {flops / 1e9:.1f} GFLOP per step "
                  f"(batch {args.batch})")
            print(f"  {'configuration':<38} {'engine':<22} {'images/s':>9} {'ratio':>6} {'% of peak':>9}")
            base = statistics.median(samples[configs[0]])
            for c in configs:
                rate = statistics.median(samples[c])
                peak, _ = (cpu_peak, "") if cpu_peak is not None else stated_cuda_peak(device, c.precision)
                pct = f"{100 * flops * rate / args.batch / peak:8.1f}%" if peak else "     n/a"
                print(f"  {c.name:<38} {benches[c].runner.engine[:22]:<22} {rate:>9.1f} {rate / base:>6.2f} {pct:>9}")
            peak, source = (cpu_peak, "measured matmul") if cpu_peak is not None else stated_cuda_peak(device, "fp32")
            if peak:
                floor = flops / peak
                print(f"  floor at the fp32 peak ({source}): {1e3 * floor:.2f} ms per step, "
                      f"at most {args.batch / floor:.0f} images/s")
            del benches


if __name__ == "__main__":
    main()
