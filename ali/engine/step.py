"""One training step of a whole group, in place on fixed tensors: what runs eagerly and what a CUDA graph captures.

Every input the step needs is in a tensor it owns (the step count, each run's epoch permutation, the
parameters, BN statistics, Adam state, the alive mask), and every output is written back in place, so
the same function is the eager CPU step and the captured CUDA step. Nothing in it syncs with the host.

Per run and per step, in this order (the order the solo models draw them):
1. the minibatch: rows ``pos*B .. (pos+1)*B`` of ``ali.data.batches.epoch_permutation(seed, epoch, n)``,
   as the solo loop (``ali.train.loop``) takes them;
2. the noise, ``ali.engine.noise.RunNoise``: a function of (the run's seed, the step, the forward pass),
   in the solo model's input order: ALI's encoder eps (B, noise_dim), then the prior's z (B, z_dim); the
   GAN's z (B, z_dim). ``alternating``'s second forward pass gets its own (pass 1).
The update rule is ``ali.models.base.AdversarialModel.train_step``'s: ``simultaneous`` (D and G
gradients at the same parameters) or ``alternating`` (D steps, then a fresh forward pass for G).
A run whose losses are not finite is frozen at that step: its parameters, BN statistics and Adam state
keep their values, its first non-finite step is recorded, and the other runs are untouched by it.
(With ``alternating``, D's update of that step is kept when only the second forward pass is non-finite.)
Inside the step the number of dispatched ops does not depend on the number of runs (noise, forward,
gradients and Adam are each one batched computation); each epoch's data orders are stacked outside the
step, in ``prepare`` (R permutations on the host once an epoch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ali.engine.batched import BatchedAdversary
from ali.engine.noise import RunNoise
from ali.engine.state import Player
from ali.data.batches import epoch_permutation


class GroupStep:
    """The group's training state; calling it advances every run by one minibatch."""

    def __init__(self, model: BatchedAdversary, d: Player, g: Player, stats: dict[str, Tensor],
                 count_names: Sequence[str], data: Tensor, seeds: Sequence[int], batch_size: int, update: str,
                 bf16: bool = False):
        if update not in ("simultaneous", "alternating"):
            raise ValueError(f"update must be 'simultaneous' or 'alternating', got {update!r}")
        dev, r = data.device, len(seeds)
        self.model, self.d, self.g, self.stats = model, d, g, stats
        self.count_names = list(count_names)  # the solo BN modules' num_batches_tracked buffers
        self.data, self.seeds, self.batch_size, self.update, self.bf16 = data, list(seeds), batch_size, update, bf16
        if data.dim() == 2:  # one training set for every run
            data = data.expand(r, *data.shape)
        self.data = data                                                            # (R, n, x_dim)
        self.run_rows = torch.arange(r, device=dev).unsqueeze(1)                    # (R, 1)
        self.steps_per_epoch = data.shape[1] // batch_size
        self.run_noise = RunNoise(self.seeds, [(batch_size, dim) for dim in model.noise_dims], dev)
        self.perms = torch.empty(r, data.shape[1], dtype=torch.long, device=dev)   # (R, n): this epoch's orders
        self.perm_epoch = -1
        self.offsets = torch.arange(batch_size, device=dev)
        self.step_count = torch.zeros((), dtype=torch.long, device=dev)            # steps taken by the group
        self.alive = torch.ones(r, dtype=torch.bool, device=dev)
        self.first_bad = torch.zeros(r, dtype=torch.long, device=dev)              # 0: never non-finite
        self.bn_batches = torch.zeros(r, dtype=torch.long, device=dev)             # num_batches_tracked per run
        self.loss_sums = torch.zeros(r, 2, device=dev)                             # (L_D, L_G) since the last log

    # ----------------------------------------------------------------------------------- inputs
    def prepare(self, step: int) -> None:
        """Host-side inputs of step ``step`` (0-based), outside any graph: each run's order when an epoch starts."""
        epoch = step // self.steps_per_epoch
        if epoch != self.perm_epoch:
            n = self.data.shape[1]
            self.perms.copy_(torch.stack([epoch_permutation(s, epoch, n, self.perms.device) for s in self.seeds]))
            self.perm_epoch = epoch

    def batch(self) -> Tensor:
        """This step's minibatch per run, (R, x_dim, B)."""
        pos = self.step_count % self.steps_per_epoch
        rows = self.perms.index_select(1, pos * self.batch_size + self.offsets)  # (R, B)
        return self.data[self.run_rows, rows].transpose(1, 2)  # each run's own rows of its own training set

    def noise(self, forward_pass: int = 0) -> list[Tensor]:
        """This step's noise for one forward pass, in the solo model's input order: each (R, dim, B)."""
        return [t.transpose(1, 2) for t in self.run_noise(self.step_count, forward_pass)]

    def losses(self, params: dict[str, Tensor], stats: dict[str, Tensor], x: Tensor,
               forward_pass: int = 0) -> tuple[Tensor, Tensor]:
        noise = self.noise(forward_pass)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=self.bf16, cache_enabled=False):
            return self.model.losses(params, stats, x, noise)

    # ------------------------------------------------------------------------------------ step
    def __call__(self) -> None:
        """One step of every run, in place (``AdversarialModel.train_step``, batched)."""
        x = self.batch()
        stats = {name: s.clone() for name, s in self.stats.items()}  # this step's BN statistics, committed below
        d = self.d.leaves()
        if self.update == "simultaneous":
            g = self.g.leaves()
            loss_d, loss_g = self.losses({**d, **g}, stats, x)
            grads_d = self.d.grads(loss_d, d, retain_graph=True)
            grads_g = self.g.grads(loss_g, g)
            ok = self.ok(loss_d, loss_g)
            self.d.adam.step(grads_d, self.frozen(ok))
            self.g.adam.step(grads_g, self.frozen(ok))
        else:  # a deviation (named option): D steps first, then a fresh forward pass for G's step
            loss_d, loss_g1 = self.losses({**d, **self.g.views()}, stats, x)
            grads_d = self.d.grads(loss_d, d)
            self.d.adam.step(grads_d, self.frozen(self.ok(loss_d, loss_g1)))
            g = self.g.leaves()
            loss_d2, loss_g = self.losses({**self.d.views(), **g}, stats, x, forward_pass=1)
            grads_g = self.g.grads(loss_g, g)
            ok = self.ok(loss_d, loss_g1, loss_d2, loss_g)
            self.g.adam.step(grads_g, self.frozen(ok))
        self.commit(loss_d.detach(), loss_g.detach(), ok, stats, 1 if self.update == "simultaneous" else 2)

    def ok(self, *losses: Tensor) -> Tensor:
        """(R,) bool: the run is alive and all its ``losses`` (R,) are finite."""
        return self.alive & torch.isfinite(torch.stack([l.detach() for l in losses], dim=1)).all(dim=1)

    @staticmethod
    def frozen(ok: Tensor) -> Tensor:
        """Adam's skip flags (R,) float: 1.0 where the run must not move (the fused kernel's found_inf)."""
        return (~ok).float()

    @torch.no_grad()
    def commit(self, loss_d: Tensor, loss_g: Tensor, ok: Tensor, stats: dict[str, Tensor], forwards: int) -> None:
        """Keep the step's BN statistics where ``ok``; log the losses; freeze and date the runs that went non-finite."""
        for name, value in stats.items():
            torch.where(ok.unsqueeze(1), value, self.stats[name], out=self.stats[name])
        self.bn_batches.add_(ok.long() * forwards)
        losses = torch.stack([loss_d, loss_g], dim=1).float()  # (R, 2)
        self.loss_sums.add_(torch.where(self.alive.unsqueeze(1), losses, 0.0))  # a run's non-finite step shows as nan
        self.first_bad.copy_(torch.where(self.alive & ~ok, self.step_count + 1, self.first_bad))
        self.alive.copy_(ok)
        self.step_count.add_(1)

    # ------------------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Every run's decoder in eval mode on the same z (N, z_dim): (R, N, x_dim)."""
        zr = z.t().unsqueeze(0).expand(len(self.seeds), -1, -1).contiguous()
        return self.model.decode(self.g.views(), self.stats, zr).transpose(1, 2)

    def run_state_dict(self, r: int) -> dict[str, Tensor]:
        """Run ``r`` as the solo model's state dict (CPU tensors): what ``mixture.build(spec)`` loads."""
        state = {**self.d.run_tensors(r), **self.g.run_tensors(r)}
        state.update({name: s[r].cpu().clone() for name, s in self.stats.items()})
        state.update({name: self.bn_batches[r].cpu().clone() for name in self.count_names})
        return state

    # ------------------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        """Everything a resumed group needs, as CPU tensors (loadable with weights_only=True)."""
        state = {"d": self.d.adam.state_dict(), "g": self.g.adam.state_dict(), "stats": dict(self.stats),
                 "step_count": self.step_count, "alive": self.alive, "first_bad": self.first_bad, "bn_batches": self.bn_batches,
                 "loss_sums": self.loss_sums}
        return _to_cpu(state)

    def load_state_dict(self, state: dict) -> None:
        """Copy ``state`` into the existing tensors (a captured graph keeps reading the same memory)."""
        self.d.adam.load_state_dict(state["d"])
        self.g.adam.load_state_dict(state["g"])
        for name, s in self.stats.items():
            s.copy_(state["stats"][name])
        for name in ("step_count", "alive", "first_bad", "bn_batches", "loss_sums"):
            getattr(self, name).copy_(state[name])


def _to_cpu(tree):
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    return tree.detach().cpu().clone()
