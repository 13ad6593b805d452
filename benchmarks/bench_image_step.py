"""Images per second of one training step of the image models, as ratios measured in one run.

    python benchmarks/bench_image_step.py [--arch svhn] [--batch 100] [--steps 5] [--device cpu]

For the chosen appendix architecture (default Table 4, SVHN) it times ALI, GAN and VAE steps, and for
ALI the channels-last layout and (on CUDA) bf16 autocast, each against the default fp32 ALI step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ali.experiments import images
from ali.train import as_model_input


def images_per_second(spec: dict, batch: int, steps: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = images.build(spec).to(device).train()
    size = images.SPECS[spec["arch"]].image_size
    data = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    x = as_model_input(data, model.channels_last)
    model.train_step(x)  # warm-up (allocations, cuDNN autotuning)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_step(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="svhn", choices=sorted(images.SPECS))
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3, help="round-robin rounds; the median is reported")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    base = {"experiment": "images", "arch": args.arch, "update": "simultaneous", "init_std": 0.01, "amp": False,
            "channels_last": False, "vae_likelihood": "bernoulli",
            "adam": {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "convention": "torch"}}
    rows = [("ALI fp32 (default)", {**base, "model": "ali"}),
            ("ALI channels-last", {**base, "model": "ali", "channels_last": True}),
            ("GAN fp32", {**base, "model": "gan"}),
            ("VAE fp32", {**base, "model": "vae"})]
    if device.type == "cuda":
        rows.insert(2, ("ALI bf16 autocast", {**base, "model": "ali", "amp": True}))
        rows.insert(3, ("ALI bf16 autocast + channels-last", {**base, "model": "ali", "amp": True,
                                                             "channels_last": True}))
    # Round-robin repeats, median per configuration: a burst of load elsewhere hits every configuration.
    samples = {name: [] for name, _ in rows}
    for _ in range(args.repeats):
        for name, spec in rows:
            samples[name].append(images_per_second(spec, args.batch, args.steps, device))
    rates = [(name, statistics.median(samples[name])) for name, _ in rows]
    print(f"{args.arch} architecture, batch {args.batch}, median of {args.repeats} x {args.steps} timed steps, "
          f"device {device}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'configuration':<36} {'images/s':>9} {'ratio':>7}")
    for name, rate in rates:
        print(f"{name:<36} {rate:>9.1f} {rate / rates[0][1]:>7.2f}")


if __name__ == "__main__":
    main()
