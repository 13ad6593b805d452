"""The K+1 semi-supervised discriminator (Salimans et al. 2016; the paper's section 4.3).

D outputs K class logits and the fake class's logit is fixed at 0, so with l = logsumexp(logits),
p(real | x) = sigmoid(l). As in openai/improved-gan's ``train_cifar_feature_matching.py``:
    L_lab = cross-entropy of the K logits on labelled data,
    L_unl = -1/2 mean(l_real) + 1/2 mean(softplus(l_real)) + 1/2 mean(softplus(l_fake)),
D minimises L_lab + w * L_unl; the learning rate decays linearly to 0 over the last epochs; the test
error uses Polyak-averaged discriminator weights (an exponential average that starts at 0, rate 1e-4).

- ``gan_fm``: GAN with feature matching; D(x) alone, the generator matches the mean of D's last hidden
  features on real and generated data (improved-gan: the mean absolute difference of the means).
- ``ali_kplus1``: ALI; D(x, z) takes q-pairs (x, G_z(x)) for the labelled and unlabelled terms and
  p-pairs (G_x(z), z) for the fake term; the generators play the ALI game against it (swapped labels on
  the real/fake logit l), without feature matching. The paper gives no architecture for this D(x, z):
  we use the dataset's unsupervised joint D with K outputs (our choice).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ali.models.base import AdversarialModel, StepOptions, register


def kplus1_losses(logits_lab, labels, logits_unl, logits_fake) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_lab, L_unl) with the fake class's logit fixed at 0."""
    l_unl, l_fake = torch.logsumexp(logits_unl, dim=1), torch.logsumexp(logits_fake, dim=1)
    loss_lab = F.cross_entropy(logits_lab, labels)
    loss_unl = -0.5 * l_unl.mean() + 0.5 * F.softplus(l_unl).mean() + 0.5 * F.softplus(l_fake).mean()
    return loss_lab, loss_unl


def linear_decay(step: int, steps_per_epoch: int, epochs: int, decay_epochs: int) -> float:
    """improved-gan's factor min(1, (epochs - epoch) / decay_epochs): constant, then linearly to 0."""
    epoch = step // steps_per_epoch
    return min(1.0, (epochs - epoch) / decay_epochs) if decay_epochs > 0 else 1.0


class KPlus1Model(AdversarialModel):
    """What both K+1 models share: labelled batches, the learning-rate schedule, Polyak averaging.

    The loop computes each step's labelled batch outside the step (``step_inputs``, a pure function
    of (seed, step)) and sets the scheduled rate before it (``on_step``), so the step itself holds no
    per-step Python state and can be captured in a CUDA graph.
    """

    averaged: tuple[str, ...] = ("discriminator",)

    def __init__(self, update: str, n_classes: int, batch_size: int, seed: int, unlabelled_weight: float,
                 polyak_rate: float, schedule: tuple[int, int, int], options: StepOptions | None = None):
        super().__init__(update, options)
        self.n_classes, self.batch_size, self.seed = n_classes, batch_size, seed
        self.unlabelled_weight, self.polyak_rate = unlabelled_weight, polyak_rate
        self.schedule = schedule  # (steps_per_epoch, epochs, decay_epochs)
        self.step = 0  # the step last given to on_step: only direct calls of losses() without inputs read it
        self.base_lr = 0.0

    def set_labelled(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """The labelled subset (uint8 images, labels), kept on the model's device, not in checkpoints."""
        self.register_buffer("lab_x", images, persistent=False)
        self.register_buffer("lab_y", labels, persistent=False)

    def init_polyak(self) -> None:
        """The averages start at zero, as improved-gan's ``disc_param_avg``; they are checkpointed."""
        for name, p in self._averaged_params():
            self.register_buffer(_avg_name(name), torch.zeros_like(p))

    def _averaged_params(self):
        return [(n, p) for n, p in self.named_parameters() if n.split(".")[0] in self.averaged]

    def configure_optimizers(self, adam, kernel=None) -> None:
        super().configure_optimizers(adam, kernel)
        self.base_lr = adam.lr  # the schedule scales this; a resumed optimiser's decayed lr is overwritten

    def on_step(self, step: int) -> None:
        self.step = step
        self.set_learning_rate(self.base_lr * linear_decay(step, *self.schedule))

    def step_inputs(self, step: int) -> dict[str, torch.Tensor]:
        x_lab, y_lab = self.labelled_batch(step)
        return {"x_lab": x_lab, "y_lab": y_lab}

    def labelled_indices(self, step: int) -> torch.Tensor:
        """Rows (CPU, (B,)) of batch ``step`` of an endless stream of permutations of the labelled set
        (improved-gan tiles the labelled set the same way); a pure function of (seed, step)."""
        n, b = self.lab_x.shape[0], self.batch_size
        q = torch.arange(step * b, (step + 1) * b)  # positions in the stream
        passes = q // n
        idx = torch.empty(b, dtype=torch.long)
        for k in passes.unique().tolist():
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 7_919 + k))
            sel = passes == k
            idx[sel] = perm[q[sel] % n]
        return idx

    def labelled_batch(self, step: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``step`` (default: the step last given to ``on_step``): images (B, C, H, W) as floats in
        [0, 1] and labels (B,), on the model's device."""
        idx = self.labelled_indices(self.step if step is None else step)
        if self.lab_x.is_cuda:  # pinned and asynchronous: no host sync per step
            idx = idx.pin_memory().to(self.lab_x.device, non_blocking=True)
        x = self.lab_x[idx].float().div_(255.0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.lab_y[idx]

    def _labelled(self, x_lab: torch.Tensor | None, y_lab: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's labelled batch; a direct call without one gets the batch of the step last given to on_step."""
        return (x_lab, y_lab) if x_lab is not None else self.labelled_batch()

    def train_step(self, x, **inputs):
        out = super().train_step(x, **inputs)
        with torch.no_grad():
            for name, p in self._averaged_params():
                avg = getattr(self, _avg_name(name))
                avg.add_(self.polyak_rate * (p - avg))
        return out

    @torch.no_grad()
    def class_logits(self, x: torch.Tensor, polyak: bool = True) -> torch.Tensor:
        """(B, K) logits in inference mode, with the Polyak-averaged weights unless ``polyak=False``."""
        if not polyak:
            return self._logits(x)
        params = {name: getattr(self, _avg_name(name)) for name, _ in self._averaged_params()}
        return functional_call(self, params, (x,), kwargs={}, strict=False, tie_weights=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # what functional_call runs
        return self._logits(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _avg_name(param_name: str) -> str:
    return "polyak__" + param_name.replace(".", "__")


@register
class GANFeatureMatching(KPlus1Model):
    name = "gan_fm"
    has_encoder = False

    def __init__(self, decoder: nn.Module, discriminator: nn.Module, z_dim: int, **kw):
        super().__init__(**kw)
        self.decoder, self.discriminator, self.z_dim = decoder, discriminator, z_dim
        self.init_polyak()

    def g_parameters(self):
        return list(self.decoder.parameters())

    def _features(self, x):
        return self.discriminator.features(x).flatten(1)  # D(x)'s last hidden layer (1x1 maps)

    noise_names = ("z",)

    def noise_shapes(self, x, **inputs):
        return {"z": (x.shape[0], self.z_dim)}

    def losses(self, x, x_lab=None, y_lab=None, z=None):
        x_lab, y_lab = self._labelled(x_lab, y_lab)
        x_fake = self.decoder(self.noise(x, {"z": z})["z"])
        # Separate calls, as improved-gan's separate get_output calls (D's BN sees each batch alone).
        loss_lab, loss_unl = kplus1_losses(self.discriminator(x_lab), y_lab, self.discriminator(x),
                                           self.discriminator(x_fake))
        loss_d = loss_lab + self.unlabelled_weight * loss_unl
        # Feature matching (improved-gan draws a second unlabelled batch; we reuse this one: our choice).
        loss_g = (self._features(x).mean(0) - self._features(x_fake).mean(0)).abs().mean()
        return loss_d, loss_g

    def _logits(self, x):
        return self.discriminator(x)


@register
class ALIKPlus1(KPlus1Model):
    name = "ali_kplus1"
    averaged = ("discriminator", "encoder")  # test pairs (x, E[G_z(x)]) use the averaged encoder too (ours)

    def __init__(self, encoder: nn.Module, decoder: nn.Module, discriminator: nn.Module, z_dim: int, **kw):
        super().__init__(**kw)
        self.encoder, self.decoder, self.discriminator, self.z_dim = encoder, decoder, discriminator, z_dim
        self.init_polyak()

    def g_parameters(self):
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    noise_names = ("eps_lab", "eps", "z")

    def noise_shapes(self, x, x_lab=None, **inputs):
        """The labelled batch's encoder noise, the unlabelled batch's, then the prior's z (the draw order)."""
        b_lab = self.batch_size if x_lab is None else x_lab.shape[0]
        return {"eps_lab": (b_lab, self.z_dim), "eps": (x.shape[0], self.z_dim), "z": (x.shape[0], self.z_dim)}

    def losses(self, x, x_lab=None, y_lab=None, eps_lab=None, eps=None, z=None):
        x_lab, y_lab = self._labelled(x_lab, y_lab)
        noise = self.noise(x, {"eps_lab": eps_lab, "eps": eps, "z": z}, x_lab=x_lab)
        z_lab, z_hat = self.encoder(x_lab, noise["eps_lab"]), self.encoder(x, noise["eps"])
        z = noise["z"]
        x_tilde = self.decoder(z)
        logits_q, logits_p = self.discriminator(x, z_hat), self.discriminator(x_tilde, z)
        loss_lab, loss_unl = kplus1_losses(self.discriminator(x_lab, z_lab), y_lab, logits_q, logits_p)
        loss_d = loss_lab + self.unlabelled_weight * loss_unl
        l_q, l_p = torch.logsumexp(logits_q, dim=1), torch.logsumexp(logits_p, dim=1)
        loss_g = F.softplus(l_q).mean() + F.softplus(-l_p).mean()  # the ALI game on the real/fake logit
        return loss_d, loss_g

    def _logits(self, x):
        mu, _ = self.encoder.distribution(x)  # the posterior mean at test time (our choice)
        return self.discriminator(x, mu)

    def encode(self, x):
        return self.encoder(x)
