"""The mixture's ALI and GAN restated for R runs at once: every layer is one batched op over a run axis.

Activations are feature-major, ``(R, features, B)``, so that no layer needs a copy:
- Linear (``nn.Linear``): ``W (R, out, in) @ h (R, in, B)`` with the weight in nn.Linear's own
  ``(out, in)`` layout, one ``bmm``/``baddbmm`` for all runs;
- BatchNorm (``nn.BatchNorm1d``, eps 1e-4, momentum 0.05): the native kernel on the ``(1, R*C, B)``
  view, i.e. per run and channel statistics over the batch, running statistics updated in place;
- maxout (``ali.nets.layers.Maxout``): a view plus ``amax`` over the pieces. Its linear layer's units
  are stored piece-major (``piece_major``): unit j's piece k at row ``k*out + j`` rather than the solo's
  ``j*pieces + k``, so the max runs over the outermost feature axis (contiguous slabs, a fast backward).
The networks are read off the solo modules (``compile_net``), so the solo code stays the reference.
On one CPU thread a run's numbers do not depend on the group it trains in (``tests/test_engine.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ali.models.base import AdversarialModel
from ali.models.losses import GAMES
from ali.nets.layers import BN_EPS, BN_MOMENTUM, Maxout

# A multiple of every CPU vector loop's stride (AVX-512: 2 x 16 floats). Softplus's exp/log1p round
# differently in the vector loop and in its scalar tail, so it runs on rows padded to LANES: each run's
# elements then meet the same lanes whatever the group size.
LANES = 64

Params = Mapping[str, Tensor]  # solo state-dict name -> (R, *solo shape)


def piece_major(t: Tensor, pieces: int) -> Tensor:
    """A solo Maxout linear's weight (out*pieces, in) or bias (out*pieces,) with its rows piece-major."""
    return t.reshape(-1, pieces, *t.shape[1:]).transpose(0, 1).reshape(t.shape)


def unit_major(t: Tensor, pieces: int) -> Tensor:
    """The inverse of ``piece_major``: back to the solo Maxout's row order."""
    return t.reshape(pieces, -1, *t.shape[1:]).transpose(0, 1).reshape(t.shape)


@dataclass(frozen=True)
class Layer:
    """One batched layer; ``name`` is the solo module's state-dict prefix (e.g. ``decoder.0.0.``)."""

    kind: str  # "linear" | "batch_norm" | "relu" | "maxout"
    name: str = ""
    bias: bool = False
    pieces: int = 0


def compile_net(module: nn.Module, prefix: str) -> tuple[Layer, ...]:
    """The solo network ``module`` (``ali/nets/mlp.py``) as a sequence of batched layers."""
    if isinstance(module, nn.Sequential):
        return tuple(layer for name, child in module.named_children()
                     for layer in compile_net(child, f"{prefix}{name}."))
    if isinstance(module, nn.Linear):
        return (Layer("linear", prefix, bias=module.bias is not None),)
    if isinstance(module, nn.BatchNorm1d):
        if (module.eps, module.momentum, module.affine, module.track_running_stats) != (BN_EPS, BN_MOMENTUM, True, True):
            raise ValueError(f"{prefix}: the group engine batches BatchNorm1d(eps={BN_EPS}, momentum={BN_MOMENTUM}) "
                             f"with affine parameters and running statistics only")
        return (Layer("batch_norm", prefix),)
    if isinstance(module, nn.ReLU):
        return (Layer("relu"),)
    if isinstance(module, Maxout):
        return compile_net(module.linear, prefix + "linear.") + (Layer("maxout", pieces=module.pieces),)
    raise TypeError(f"the group engine has no batched form of {type(module).__name__} ({prefix!r})")


def linear(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """nn.Linear for R runs: h (R, in, B), weight (R, out, in), bias (R, out) -> (R, out, B)."""
    if bias is None:
        return torch.bmm(weight, h)
    return torch.baddbmm(bias.unsqueeze(-1), weight, h)


def batch_norm(h: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor,
               training: bool) -> Tensor:
    """nn.BatchNorm1d for R runs: h (R, C, B); statistics per run and channel over the batch.

    In training the running statistics (R, C) are updated in place, as the solo module's are.
    """
    r, c, b = h.shape
    # The affine parameters are (R, C) slices of the flat (R, P) parameters: copied (a view only when R == 1,
    # and the step's ops would then depend on R).
    weight, bias = (t.clone(memory_format=torch.contiguous_format).view(r * c) for t in (weight, bias))
    y = F.batch_norm(h.reshape(1, r * c, b), running_mean.view(r * c), running_var.view(r * c),
                     weight, bias, training, BN_MOMENTUM, BN_EPS)
    return y.view(r, c, b)


class _MaxOverPieces(torch.autograd.Function):
    """``amax`` over dim 1 with amax's exact gradient, (grad / number of maxima) at each maximum.

    PyTorch's amax backward rebuilds the mask and counts it (through an int64 copy) on every backward
    pass; the step backpropagates through D twice (L_D, then L_G), so here the mask and count are made
    once, in the forward pass. The arithmetic is amax's: mask * (grad / count).
    """

    @staticmethod
    def forward(ctx, h: Tensor) -> Tensor:  # h (R, pieces, out, B)
        y = h.amax(dim=1)
        is_max = (h == y.unsqueeze(1)).to(h.dtype)                 # (R, pieces, out, B): 1 at the maxima
        ctx.save_for_backward(is_max, is_max.sum(dim=1))           # and their count (R, out, B)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        is_max, count = ctx.saved_tensors
        return is_max * (grad / count).unsqueeze(1)


def maxout(h: Tensor, pieces: int) -> Tensor:
    """Maxout's max over each unit's ``pieces`` (rows piece-major): (R, pieces * out, B) -> (R, out, B)."""
    r, c, b = h.shape
    return _MaxOverPieces.apply(h.view(r, pieces, c // pieces, b))


def run_net(layers: Sequence[Layer], h: Tensor, params: Params, stats: Params, training: bool) -> Tensor:
    """The network's forward pass for R runs (the solo ``nn.Sequential.forward``)."""
    for layer in layers:
        if layer.kind == "linear":
            h = linear(h, params[layer.name + "weight"], params[layer.name + "bias"] if layer.bias else None)
        elif layer.kind == "batch_norm":
            h = batch_norm(h, params[layer.name + "weight"], params[layer.name + "bias"],
                           stats[layer.name + "running_mean"], stats[layer.name + "running_var"], training)
        elif layer.kind == "relu":
            h = torch.relu(h)
        else:
            h = maxout(h, layer.pieces)
    return h


def lane_aligned_softplus(x: Tensor) -> Tensor:
    """``F.softplus`` of x (..., n), computed on rows zero-padded to a multiple of LANES."""
    n = x.shape[-1]
    return F.softplus(F.pad(x, (0, -n % LANES)))[..., :n]


def adversarial_losses(logit_real: Tensor, logit_fake: Tensor, model: str) -> tuple[Tensor, Tensor]:
    """(L_D, L_G), each (R,), from logits (R, B): the solo model's own game (``ali.models.losses.GAMES``).

    real = the encoder/data side (q-pairs for ALI), fake = the decoder side; the batch mean runs over the
    last dimension, so each run gets its own losses.
    """
    return GAMES[model](logit_real, logit_fake, softplus=lane_aligned_softplus)


def _maxouts(module: nn.Module) -> list[tuple[str, Maxout]]:
    return [(f"{name}.linear.", m) for name, m in module.named_modules() if isinstance(m, Maxout)]


class BatchedAdversary:
    """ALI (``ali/models/ali.py``) or the GAN (``ali/models/gan.py``) of the mixture, for R runs.

    Built from one solo model of the group; parameters and statistics come in per call, so the same
    object serves the training step, the CUDA graph and evaluation.
    """

    def __init__(self, solo: AdversarialModel):
        if solo.name not in ("ali", "gan"):
            raise ValueError(f"the group engine trains the mixture's ali and gan only, not {solo.name!r}")
        self.name, self.z_dim = solo.name, solo.z_dim
        # {parameter name: pieces} of the linear layers feeding a maxout, which are stored piece-major
        self.piece_major = {f"{prefix}{kind}": m.pieces for prefix, m in _maxouts(solo) for kind in ("weight", "bias")}
        self.decoder = compile_net(solo.decoder, "decoder.")
        self.discriminator = compile_net(solo.discriminator.net, "discriminator.net.")
        if self.name == "ali":
            self.encoder = compile_net(solo.encoder.net, "encoder.net.")
            self.noise_dims: tuple[int, ...] = (solo.encoder.noise_dim, solo.z_dim)  # eps, then z: the solo order
        else:
            self.noise_dims = (solo.z_dim,)

    def losses(self, params: Params, stats: Params, x: Tensor, noise: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """(L_D, L_G), each (R,), from one forward pass; x (R, x_dim, B); noise as ``noise_dims``, (R, dim, B)."""
        b = x.shape[-1]
        if self.name == "ali":
            eps, z = noise
            z_hat = run_net(self.encoder, torch.cat([x, eps], dim=1), params, stats, True)  # (R, z, B): q(z | x)
            x_tilde = run_net(self.decoder, z, params, stats, True)                           # (R, x, B): p(x | z)
            pairs = torch.cat([torch.cat([x, z_hat], dim=1), torch.cat([x_tilde, z], dim=1)], dim=2)  # q then p pairs
        else:
            (z,) = noise
            pairs = torch.cat([x, run_net(self.decoder, z, params, stats, True)], dim=2)      # (R, x, 2B)
        logits = run_net(self.discriminator, pairs, params, stats, True).squeeze(1)           # (R, 2B), one D call
        return adversarial_losses(logits[:, :b], logits[:, b:], self.name)

    def decode(self, params: Params, stats: Params, z: Tensor) -> Tensor:
        """G_x(z) in eval mode (population statistics): z (R, z_dim, N) -> (R, x_dim, N)."""
        return run_net(self.decoder, z, params, stats, False)
