"""Speed of the mixture's training step: the run-batched engine against separate runs, in one process.

    python benchmarks/bench_mixture_step.py [--model ali] [--steps 4] [--repeats 3] [--device cpu]
                                            [--sizes 1 10 40] [--threads 1] [--vmap]

For the paper-scale networks (batch 100) it prints run-steps/s (steps/s x runs in the group) of
- the plain eager PyTorch step of one solo model (``mixture.build(spec).train_step``),
- the engine's group of R runs, eager, for each R in --sizes (and captured as a CUDA graph on CUDA),
each as a ratio against the engine's eager group of 1 and against the plain solo step; medians of
--repeats round-robin rounds, so a burst of load elsewhere hits every configuration. Each row also
shows the floor a run-step is measured against: max(FLOPs / peak FLOP/s, state bytes / bandwidth),
with the peak (a large matmul) and the bandwidth (a large copy) measured in this run on this device,
and the number of ops the dispatcher runs per group step (the launches of an uncaptured GPU step;
with CUDA's batched Adam it does not grow with R, and is printed for that kernel too). Then the 2-core target: a group of 10 on 2 threads against 10
separate 1-thread runs on 2 cores (estimated as 2 x the solo 1-thread rate), and the cost of the
training curve's evaluation. ``--vmap`` adds the forward pass and both gradients of R runs, the
engine's hand-batched layers against ``torch.func`` (``stack_module_state`` + ``vmap(functional_call)``
of the solo model's own ``losses``), as a ratio per R.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ali.config import load_config
from ali.engine.step import GroupStep
from ali.experiments import mixture as mx
from ali.train import group as lifecycle_group
from ali.train.graph import StepRunner
from ali.train.runtime import seed_everything

BYTES_PER_PARAM = 11 * 4  # fused Adam reads p, g, m, v and writes p, m, v; 3 gemms read w; backward writes g


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], None], n: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` over ``n`` calls, after one untimed call."""
    fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / n


def device_peaks(device: torch.device) -> tuple[float, float]:
    """(FLOP/s of a 2048^3 fp32 matmul, bytes/s of a 256 MB copy counted as read + write), measured now."""
    a, b = torch.randn(2048, 2048, device=device), torch.randn(2048, 2048, device=device)
    flops = 2 * 2048**3 / timed(lambda: torch.mm(a, b), 5, device)
    src = torch.empty(64 * 2**20, device=device)
    dst = torch.empty_like(src)
    bandwidth = 2 * src.numel() * 4 / timed(lambda: dst.copy_(src), 5, device)
    return flops, bandwidth


def flops_per_run_step(solo: nn.Module, batch: int) -> float:
    """Matmul FLOPs of one simultaneous step: G layers fwd + 2 bwd gemms; D layers on 2B, fwd + 3 bwd gemms
    (weight and input gradients for L_D, input gradients again for L_G)."""
    total = 0.0
    for name, m in solo.named_modules():
        if isinstance(m, nn.Linear):
            is_d = name.startswith("discriminator")
            total += 2 * (2 * batch if is_d else batch) * m.in_features * m.out_features * (4 if is_d else 3)
    return total


def solo_step(spec: dict, data: torch.Tensor, device: torch.device) -> Callable[[], None]:
    """The plain eager PyTorch step: the solo model's own train_step on successive batches."""
    seed_everything(spec["seed"])
    model = mx.build(spec).to(device).train()
    batches = [data[i * spec["batch_size"]:(i + 1) * spec["batch_size"]] for i in range(50)]
    state = {"i": 0}

    def step() -> None:
        model.train_step(batches[state["i"] % len(batches)])
        state["i"] += 1

    return step


def build_group(specs: list[dict], device: torch.device) -> GroupStep:
    return lifecycle_group.build_group(specs, mx.build, mx.training_sets(specs), device)


def group_step(group: GroupStep, capture: bool) -> Callable[[], None]:
    runner = StepRunner(lambda inputs: group(), capture=capture, snapshot=group.state_dict,
                        restore=group.load_state_dict, label="group-")
    state = {"i": 0}

    def step() -> None:
        group.prepare(state["i"])
        runner()
        state["i"] += 1

    for _ in range(1 if capture else 0):  # warm-up steps and the capture (which leave no trace), one replay
        step()
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ali", choices=("ali", "gan"))
    p.add_argument("--steps", type=int, default=4, help="timed steps per measurement")
    p.add_argument("--repeats", type=int, default=3, help="round-robin rounds; the median is reported")
    p.add_argument("--device", default="cpu")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 40])
    p.add_argument("--vmap", action="store_true", help="also time torch.func's vmap against the hand-batched layers")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for every row but the 2-core target")
    p.add_argument("--eval-every", type=int, default=10_000, help="for the evaluation-overhead line")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    plan = mx.plan(load_config("config/paper.yaml"))
    specs = [{**plan[f"random/{args.model}/run{i % 10}"], "seed": i} for i in range(max(args.sizes + [10]))]
    data = torch.from_numpy(mx.train_set(mx.mixture_data(specs[0]))[0]).to(device)
    seed_everything(0)
    solo = mx.build(specs[0])
    flops, state_bytes = flops_per_run_step(solo, specs[0]["batch_size"]), BYTES_PER_PARAM * sum(
        p.numel() for p in solo.parameters())
    peak_flops, bandwidth = device_peaks(device)
    floor_s = max(flops / peak_flops, state_bytes / bandwidth)

    # (name, runs per step, threads, step function)
    configs: list[tuple[str, int, int, Callable[[], None]]] = [
        ("plain solo train_step", 1, args.threads, solo_step(specs[0], data, device))]
    groups = {r: build_group(specs[:r], device) for r in args.sizes}
    for r in args.sizes:
        configs.append((f"engine eager, group of {r}", r, args.threads, group_step(groups[r], False)))
    if device.type == "cuda":
        for r in args.sizes:
            configs.append((f"engine captured, group of {r}", r, args.threads,
                            group_step(build_group(specs[:r], device), True)))
    if device.type == "cpu":
        configs.append(("engine eager, group of 10, 2 threads", 10, 2,
                        group_step(groups.get(10) or build_group(specs[:10], device), False)))
    samples: dict[str, list[float]] = {name: [] for name, *_ in configs}
    for _ in range(args.repeats):
        for name, runs, threads, step in configs:
            torch.set_num_threads(threads)
            samples[name].append(runs / timed(step, args.steps, device))
    torch.set_num_threads(args.threads)
    rate = {name: statistics.median(v) for name, v in samples.items()}
    solo_rate, g1_rate = rate["plain solo train_step"], rate.get("engine eager, group of 1", float("nan"))

    print(f"{args.model}, paper-scale nets, batch {specs[0]['batch_size']}, device {device}, "
          f"{args.threads} thread(s); median of {args.repeats} round-robin rounds x {args.steps} timed steps")
    print(f"floor per run-step: {flops / 1e9:.3f} GFLOP / {peak_flops / 1e9:.1f} GFLOP/s (2048^3 fp32 matmul, "
          f"measured now) = {flops / peak_flops * 1e3:.2f} ms; {state_bytes / 1e6:.1f} MB state traffic / "
          f"{bandwidth / 1e9:.1f} GB/s (256 MB copy, measured now) = {state_bytes / bandwidth * 1e3:.2f} ms")
    ops = {f"engine eager, group of {r}": dispatched_ops(groups[r]) for r in args.sizes}
    batched_ops = [dispatched_ops(build_group(specs[:r], device, adam_kernel="batched")) for r in args.sizes]
    print(f"{'configuration':<40} {'run-steps/s':>11} {'vs group 1':>10} {'vs solo':>8} {'% of floor':>10} "
          f"{'ops/step':>8}")
    for name, _, threads, _ in configs:  # the floor is for --threads; another thread count gets none
        floor = f"{100 * rate[name] * floor_s:>9.1f}%" if threads == args.threads else f"{'-':>10}"
        print(f"{name:<40} {rate[name]:>11.2f} {rate[name] / g1_rate:>10.2f} {rate[name] / solo_rate:>8.2f} {floor} "
              f"{ops.get(name, '-'):>8}")
    print(f"ops/step with CUDA's batched Adam (this device's kernel: {groups[args.sizes[0]].d.adam.kernel}), "
          f"groups of {args.sizes}: {batched_ops} (floor: the same count for every group size)")
    if device.type == "cpu":
        target = rate["engine eager, group of 10, 2 threads"] / (2 * solo_rate)
        print(f"2-core target: group of 10 on 2 threads / (10 separate 1-thread runs on 2 cores, "
              f"est. 2 x solo rate) = {target:.2f}")
    eval_report(groups[max(args.sizes)], specs, rate[f"engine eager, group of {max(args.sizes)}"], args.eval_every,
                device)
    if args.vmap:
        vmap_report(specs, args.sizes, args.steps, args.repeats, device)


class OpCounter(TorchDispatchMode):
    """Counts the ops the dispatcher runs."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def dispatched_ops(group: GroupStep) -> int:
    """Ops dispatched by one eager group step (its state is put back afterwards)."""
    saved = group.state_dict()
    group.prepare(0)
    with OpCounter() as counter:
        group()
    group.load_state_dict(saved)
    return counter.count


def vmap_report(specs: list[dict], sizes: list[int], steps: int, repeats: int, device: torch.device) -> None:
    """Forward pass and both gradients of R runs: the hand-batched layers against torch.func's vmap."""
    from torch.func import functional_call, stack_module_state, vmap

    class Losses(nn.Module):  # functional_call runs forward: the solo model's own losses, stacked
        def __init__(self, model: nn.Module):
            super().__init__()
            self.m = model

        def forward(self, x, eps, z):
            return torch.stack(self.m.losses(x, eps=eps, z=z) if self.m.name == "ali" else self.m.losses(x, z=z))

    b = specs[0]["batch_size"]
    times: dict[str, list[float]] = {}
    fns = {}
    for r in sizes:
        group = build_group(specs[:r], device)
        solos = []
        for spec in specs[:r]:
            seed_everything(spec["seed"])
            solos.append(mx.build(spec).to(device).train())
        params, buffers = stack_module_state(solos)
        params = {f"m.{k}": v for k, v in params.items()}
        buffers = {f"m.{k}": v for k, v in buffers.items()}
        wrapper = Losses(solos[0])
        batched = vmap(lambda p, bu, x, eps, z: functional_call(wrapper, (p, bu), (x, eps, z)))
        d_names = [k for k in params if k.startswith("m.discriminator")]
        g_names = [k for k in params if k not in d_names]
        x, eps, z = (torch.randn(r, b, 2, device=device) for _ in range(3))
        x_t, noise = x.transpose(1, 2).contiguous(), [eps.transpose(1, 2).contiguous(), z.transpose(1, 2).contiguous()]
        noise = noise if group.model.name == "ali" else noise[1:]

        def hand(group=group, x_t=x_t, noise=noise) -> None:
            d, g = group.d.leaves(), group.g.leaves()
            stats = {k: v.clone() for k, v in group.stats.items()}
            loss_d, loss_g = group.model.losses({**d, **g}, stats, x_t, noise)
            group.d.grads(loss_d, d, retain_graph=True)
            group.g.grads(loss_g, g)

        def func(params=params, buffers=buffers, batched=batched, x=x, eps=eps, z=z, d_names=d_names,
                 g_names=g_names) -> None:
            out = batched(params, buffers, x, eps, z)  # (R, 2)
            torch.autograd.grad(out[:, 0].sum(), [params[k] for k in d_names], retain_graph=True)
            torch.autograd.grad(out[:, 1].sum(), [params[k] for k in g_names])

        fns[f"hand {r}"], fns[f"vmap {r}"] = hand, func
    for _ in range(repeats):
        for name, fn in fns.items():
            times.setdefault(name, []).append(timed(fn, steps, device))
    print("forward + both gradients, ms per group step (median): hand-batched layers vs torch.func vmap")
    for r in sizes:
        hand_s, vmap_s = statistics.median(times[f"hand {r}"]), statistics.median(times[f"vmap {r}"])
        print(f"  group of {r:>3}: hand {hand_s * 1e3:8.1f}  vmap {vmap_s * 1e3:8.1f}  vmap / hand {vmap_s / hand_s:5.2f}")


def eval_report(group: GroupStep, specs: list[dict], run_steps_per_s: float, eval_every: int,
                device: torch.device) -> None:
    """The training curve's evaluation: decode 2,500 z per run on the device, coverage on the host."""
    z = torch.randn(mx.EVAL_SAMPLES, group.model.z_dim, device=device)
    r = len(group.seeds)
    coverage = mx.curve_coverage(specs)

    def evaluate() -> None:
        samples = group.decode(z).cpu().numpy()
        for i in range(r):
            coverage(i, samples[i])

    seconds = timed(evaluate, 2, device)
    train_seconds = eval_every * r / run_steps_per_s
    print(f"evaluation of {r} runs: {seconds * 1e3:.0f} ms = {100 * seconds / train_seconds:.2f}% of "
          f"{eval_every} training steps")


if __name__ == "__main__":
    main()
