"""Speed of one mixture training step, as ratios measured in one run.

    python benchmarks/bench_mixture_step.py [--steps 300] [--device cpu]

Compares, for the paper-scale ALI and GAN on the 25-mode mixture (batch 100):
- the released code's simultaneous update (one forward pass, two gradients) against the
  alternating deviation (two forward passes);
- the joint discriminator called once on the concatenated q- and p-pairs against two calls;
- 1 CPU thread against all of them (the workflow runs one thread per job, many jobs at once).
Prints steps/s for each and every ratio against the default configuration.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ali.config import load_config
from ali.experiments import mixture as mx
from ali.models import ali as ali_module
from ali.models.losses import ali_generator_loss, discriminator_loss


def _two_call_losses(self, x):
    """ALI's losses with D called separately on each side (what batching replaces)."""
    z_hat = self.encoder(x)
    z = torch.randn(x.shape[0], self.z_dim, device=x.device)
    x_tilde = self.decoder(z)
    logit_q, logit_p = self.discriminator(x, z_hat), self.discriminator(x_tilde, z)
    return discriminator_loss(logit_q, logit_p), ali_generator_loss(logit_q, logit_p)


def steps_per_second(spec: dict, steps: int, device: torch.device, two_calls: bool = False) -> float:
    torch.manual_seed(0)
    model = mx.build(spec).to(device).train()
    if two_calls:
        model.losses = _two_call_losses.__get__(model)
    x, _ = mx.train_set(mx.MixtureSpec(**{**spec["data"], "grid": tuple(spec["data"]["grid"])}))
    data = torch.from_numpy(x).to(device)
    batches = [data[i * 100:(i + 1) * 100] for i in range(50)]
    for b in batches[:10]:  # warm-up
        model.train_step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        model.train_step(batches[i % len(batches)])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3, help="round-robin rounds; the median is reported")
    args = p.parse_args()
    device = torch.device(args.device)
    plan = mx.plan(load_config("config/paper.yaml"))
    ali_spec, gan_spec = plan["fixed/ali/run0"], plan["fixed/gan/run0"]
    alt_spec = {**ali_spec, "update": "alternating"}
    max_threads = torch.get_num_threads()

    configs = [("ALI simultaneous, D batched, 1 thread (default)", ali_spec, 1, False),
               ("ALI simultaneous, D called twice, 1 thread", ali_spec, 1, True),
               ("ALI alternating (deviation), 1 thread", alt_spec, 1, False),
               ("GAN simultaneous, 1 thread", gan_spec, 1, False),
               (f"ALI simultaneous, D batched, {max_threads} threads", ali_spec, max_threads, False)]
    # Round-robin repeats, median per configuration: a burst of load elsewhere hits every configuration.
    samples: dict[str, list[float]] = {name: [] for name, *_ in configs}
    for _ in range(args.repeats):
        for name, spec, threads, two_calls in configs:
            torch.set_num_threads(threads)
            samples[name].append(steps_per_second(spec, args.steps, device, two_calls))
    rows = [(name, statistics.median(samples[name])) for name, *_ in configs]

    base = rows[0][1]
    print(f"device {device}, median of {args.repeats} x {args.steps} timed steps, batch 100, paper-scale networks")
    print(f"{'configuration':<52} {'steps/s':>9} {'ratio':>7} {'200k steps':>11}")
    for name, rate in rows:
        print(f"{name:<52} {rate:>9.1f} {rate / base:>7.2f} {200_000 / rate / 60:>9.1f} m")


if __name__ == "__main__":
    main()
