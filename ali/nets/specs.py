"""The paper's image architectures (appendix Tables 3-6) as data; ``ali.nets.conv`` builds them.

Each layer row is (operation, kernel, stride, feature maps, BN, dropout, nonlinearity, bias), read off
``shared/paper/appendix_tables.md``. What the tables leave out comes from the released code
(``experiments/ali_{svhn,cifar10}.py``), and is the same for every table:

- Padding: none ('valid', Blocks' default ``border_mode``). With it every stack reaches 1x1 exactly
  where the tables imply (e.g. SVHN/CIFAR10 encoder 32 -> 28 -> 13 -> 10 -> 4 -> 1 -> 1 -> 1), so no
  padding needs choosing; the tests check every intermediate size.
- Dropout is applied to a layer's *input* (Blocks' ``apply_dropout`` on the brick's INPUT role).
- Biases: a layer followed by BN has none; the encoder's last layer has one; the decoder's last
  layer has an *untied* bias (one per channel and pixel) initialised to the log-odds of the mean
  training pixel; the x-discriminator's first layer has a bias, its other layers and every layer of
  the z-discriminator have none; the joint discriminator's layers all have one.
- Maxout (CIFAR10's discriminator): the feature-map count is the convolution's output; the maxout
  that follows groups consecutive channels, so 2 pieces halve it. The joint D(x, z) then sees
  256 + 256 = 512 channels, not the 1024 Table 3 prints: we follow the code and report the gap.
- Table 3/4's last decoder layer but one is listed as a 1x1 convolution; the code used a 1x1
  transposed convolution, which is the same map.
- D(x, z)'s last layer is listed with a sigmoid: we keep the logit and put the sigmoid in the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONV, CONVT = "conv", "convT"
LRELU, MAXOUT, LINEAR, SIGMOID = "lrelu", "maxout", "linear", "sigmoid"
NO_BIAS, TIED, UNTIED = "none", "tied", "untied"


@dataclass(frozen=True)
class Layer:
    op: str
    kernel: int
    stride: int
    out: int
    bn: bool
    dropout: float
    act: str
    bias: str = NO_BIAS


@dataclass(frozen=True)
class ArchSpec:
    name: str
    table: str
    image_size: int
    channels: int
    z_dim: int
    encoder: tuple[Layer, ...]  # last layer outputs 2 * z_dim: mu and log sigma
    decoder: tuple[Layer, ...]
    disc_x: tuple[Layer, ...]
    disc_z: tuple[Layer, ...]
    disc_joint: tuple[Layer, ...]
    leak: float
    maxout_pieces: int
    init_std: float
    lr: float
    beta1: float  # PyTorch convention (Table beta1 0.5 is the same in both)
    beta2: float  # PyTorch convention (the tables' 10^-3 is Blocks' 1 - 0.999)
    batch_size: int
    epochs: int
    notes: tuple[str, ...] = field(default_factory=tuple)


def L(op, k, s, out, bn, drop, act, bias=NO_BIAS) -> Layer:  # noqa: N802  (a table row)
    return Layer(op, k, s, out, bn, drop, act, bias)


def _encoder_32(act_out: int) -> tuple[Layer, ...]:
    """Tables 3 and 4 share G_z up to the output width (2 * latent)."""
    return (L(CONV, 5, 1, 32, True, 0.0, LRELU), L(CONV, 4, 2, 64, True, 0.0, LRELU),
            L(CONV, 4, 1, 128, True, 0.0, LRELU), L(CONV, 4, 2, 256, True, 0.0, LRELU),
            L(CONV, 4, 1, 512, True, 0.0, LRELU), L(CONV, 1, 1, 512, True, 0.0, LRELU),
            L(CONV, 1, 1, act_out, False, 0.0, LINEAR, TIED))


DECODER_32 = (L(CONVT, 4, 1, 256, True, 0.0, LRELU), L(CONVT, 4, 2, 128, True, 0.0, LRELU),
              L(CONVT, 4, 1, 64, True, 0.0, LRELU), L(CONVT, 4, 2, 32, True, 0.0, LRELU),
              L(CONVT, 5, 1, 32, True, 0.0, LRELU), L(CONV, 1, 1, 32, True, 0.0, LRELU),
              L(CONV, 1, 1, 3, False, 0.0, SIGMOID, UNTIED))

CIFAR10 = ArchSpec(
    name="cifar10", table="Table 3", image_size=32, channels=3, z_dim=64,
    encoder=_encoder_32(128), decoder=DECODER_32,
    disc_x=(L(CONV, 5, 1, 32, False, 0.2, MAXOUT, TIED), L(CONV, 4, 2, 64, False, 0.5, MAXOUT),
            L(CONV, 4, 1, 128, False, 0.5, MAXOUT), L(CONV, 4, 2, 256, False, 0.5, MAXOUT),
            L(CONV, 4, 1, 512, False, 0.5, MAXOUT)),
    disc_z=(L(CONV, 1, 1, 512, False, 0.2, MAXOUT), L(CONV, 1, 1, 512, False, 0.5, MAXOUT)),
    disc_joint=(L(CONV, 1, 1, 1024, False, 0.5, MAXOUT, TIED), L(CONV, 1, 1, 1024, False, 0.5, MAXOUT, TIED),
                L(CONV, 1, 1, 1, False, 0.5, LINEAR, TIED)),
    leak=0.1, maxout_pieces=2, init_std=0.01, lr=1e-4, beta1=0.5, beta2=0.999, batch_size=100, epochs=6475,
    notes=("Table 3 gives D(x, z) a 1024-channel input; maxout halves D(x)'s and D(z)'s 512 maps, so the "
           "released code's joint input is 512 channels, which we follow",),
)

SVHN = ArchSpec(
    name="svhn", table="Table 4", image_size=32, channels=3, z_dim=256,
    encoder=_encoder_32(512), decoder=DECODER_32,
    disc_x=(L(CONV, 5, 1, 32, False, 0.2, LRELU, TIED), L(CONV, 4, 2, 64, True, 0.2, LRELU),
            L(CONV, 4, 1, 128, True, 0.2, LRELU), L(CONV, 4, 2, 256, True, 0.2, LRELU),
            L(CONV, 4, 1, 512, True, 0.2, LRELU)),
    disc_z=(L(CONV, 1, 1, 512, False, 0.2, LRELU), L(CONV, 1, 1, 512, False, 0.2, LRELU)),
    disc_joint=(L(CONV, 1, 1, 1024, False, 0.2, LRELU, TIED), L(CONV, 1, 1, 1024, False, 0.2, LRELU, TIED),
                L(CONV, 1, 1, 1, False, 0.2, LINEAR, TIED)),
    leak=0.01, maxout_pieces=1, init_std=0.01, lr=1e-4, beta1=0.5, beta2=0.999, batch_size=100, epochs=100,
)

CELEBA = ArchSpec(
    name="celeba", table="Table 5", image_size=64, channels=3, z_dim=256,
    encoder=(L(CONV, 2, 1, 64, True, 0.0, LRELU), L(CONV, 7, 2, 128, True, 0.0, LRELU),
             L(CONV, 5, 2, 256, True, 0.0, LRELU), L(CONV, 7, 2, 256, True, 0.0, LRELU),
             L(CONV, 4, 1, 512, True, 0.0, LRELU), L(CONV, 1, 1, 512, False, 0.0, LINEAR, TIED)),
    decoder=(L(CONVT, 4, 1, 512, True, 0.0, LRELU), L(CONVT, 7, 2, 256, True, 0.0, LRELU),
             L(CONVT, 5, 2, 256, True, 0.0, LRELU), L(CONVT, 7, 2, 128, True, 0.0, LRELU),
             L(CONVT, 2, 1, 64, True, 0.0, LRELU), L(CONV, 1, 1, 3, False, 0.0, SIGMOID, UNTIED)),
    disc_x=(L(CONV, 2, 1, 64, True, 0.0, LRELU), L(CONV, 7, 2, 128, True, 0.0, LRELU),
            L(CONV, 5, 2, 256, True, 0.0, LRELU), L(CONV, 7, 2, 256, True, 0.0, LRELU),
            L(CONV, 4, 1, 512, True, 0.0, LRELU)),
    disc_z=(L(CONV, 1, 1, 1024, False, 0.2, LRELU), L(CONV, 1, 1, 1024, False, 0.2, LRELU)),
    disc_joint=(L(CONV, 1, 1, 2048, False, 0.2, LRELU, TIED), L(CONV, 1, 1, 2048, False, 0.2, LRELU, TIED),
                L(CONV, 1, 1, 1, False, 0.2, LINEAR, TIED)),
    leak=0.02, maxout_pieces=1, init_std=0.01, lr=1e-4, beta1=0.5, beta2=0.999, batch_size=100, epochs=123,
    notes=("Table 5's D(z) takes a 512 x 1 x 1 input although the latent is 256-d; we feed z (256 maps)",
           "Table 5 gives no beta2; we use PyTorch's 0.999, the value every other table implies"),
)

TINY_IMAGENET = ArchSpec(
    name="tiny_imagenet", table="Table 6", image_size=64, channels=3, z_dim=256,
    encoder=(L(CONV, 4, 2, 64, True, 0.0, LRELU), L(CONV, 4, 1, 64, True, 0.0, LRELU),
             L(CONV, 4, 2, 128, True, 0.0, LRELU), L(CONV, 4, 1, 128, True, 0.0, LRELU),
             L(CONV, 4, 2, 256, True, 0.0, LRELU), L(CONV, 4, 1, 256, True, 0.0, LRELU),
             L(CONV, 1, 1, 2048, True, 0.0, LRELU), L(CONV, 1, 1, 2048, True, 0.0, LRELU),
             L(CONV, 1, 1, 512, False, 0.0, LINEAR, TIED)),
    decoder=(L(CONV, 1, 1, 2048, True, 0.0, LRELU), L(CONV, 1, 1, 256, True, 0.0, LRELU),
             L(CONVT, 4, 1, 256, True, 0.0, LRELU), L(CONVT, 4, 2, 128, True, 0.0, LRELU),
             L(CONVT, 4, 1, 128, True, 0.0, LRELU), L(CONVT, 4, 2, 64, True, 0.0, LRELU),
             L(CONVT, 4, 1, 64, True, 0.0, LRELU), L(CONVT, 4, 2, 64, True, 0.0, LRELU),
             L(CONV, 1, 1, 3, False, 0.0, SIGMOID, UNTIED)),
    disc_x=(L(CONV, 4, 2, 64, False, 0.2, LRELU, TIED), L(CONV, 4, 1, 64, True, 0.2, LRELU),
            L(CONV, 4, 2, 128, True, 0.2, LRELU), L(CONV, 4, 1, 128, True, 0.2, LRELU),
            L(CONV, 4, 2, 256, True, 0.2, LRELU), L(CONV, 4, 1, 256, True, 0.2, LRELU)),
    disc_z=(L(CONV, 1, 1, 2048, False, 0.2, LRELU), L(CONV, 1, 1, 2048, False, 0.2, LRELU)),
    disc_joint=(L(CONV, 1, 1, 4096, False, 0.2, LRELU, TIED), L(CONV, 1, 1, 4096, False, 0.2, LRELU, TIED),
                L(CONV, 1, 1, 1, False, 0.2, LINEAR, TIED)),
    leak=0.01, maxout_pieces=1, init_std=0.01, lr=1e-4, beta1=0.5, beta2=0.999, batch_size=128, epochs=125,
)

SPECS = {s.name: s for s in (CIFAR10, SVHN, CELEBA, TINY_IMAGENET)}


def out_size(layer: Layer, size: int) -> int:
    """Spatial size after a layer with no padding (the released code's 'valid' border mode)."""
    if layer.op == CONV:
        return (size - layer.kernel) // layer.stride + 1
    return (size - 1) * layer.stride + layer.kernel
