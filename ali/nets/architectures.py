"""The paper's image architectures (appendix Tables 3-6) as data; ``ali.nets.conv`` builds them.

Each layer row is (operation, kernel, stride, feature maps, BN, dropout, nonlinearity, bias), read off
``shared/paper/appendix_tables.md``. What the tables leave out comes from the released scripts
(``experiments/ali_{cifar10,svhn,celeba,tiny_imagenet}.py`` of github.com/IshmaelBelghazi/ALI):

- Padding: none ('valid', Blocks' default ``border_mode``). With it every stack reaches 1x1 exactly
  where the tables imply (e.g. SVHN/CIFAR10 encoder 32 -> 28 -> 13 -> 10 -> 4 -> 1 -> 1 -> 1), so no
  padding needs choosing; the tests check every intermediate size.
- Dropout is applied to a layer's *input* (Blocks' ``apply_dropout`` on the brick's INPUT role); a
  row's ``act_dropout`` is dropout on its nonlinearity's input instead (where the released CIFAR10
  script's filter lands on a maxout brick).
- Biases are not in the tables; each script sets them, and they differ by script:
  every script: a layer followed by BN has none; the encoder's last layer has one (1x1: tied and
  untied are the same map); the decoder's last layer has an *untied* bias (one per channel and pixel)
  initialised to the log-odds of the mean training pixel; every joint-discriminator layer has one.
  SVHN, CelebA, Tiny ImageNet: D(x)'s first layer has a tied bias (set explicitly), its other layers
  none (``use_bias=False``). D(z): none, except Tiny ImageNet's (built without ``use_bias=False``).
  CIFAR10: D(x) is built without ``use_bias=False``, so all five convolutions have a bias of Blocks'
  default kind, untied at the time (see ``CIFAR10_DX_BIAS``).
- Where a script and its table disagree, or the script's meaning hangs on a library default, the
  architecture carries a named option (``OPTIONS``, resolved by ``architecture``); the default follows the
  released script unless its note says "our choice", and ``Architecture.release_notes`` says which.
- Maxout (CIFAR10's discriminator): the feature-map count is the convolution's output; the maxout
  that follows groups consecutive channels, so 2 pieces halve it. The joint D(x, z) then sees
  256 + 256 = 512 channels, not the 1024 Table 3 prints: we follow the code and report the gap.
- Table 3/4's last decoder layer but one is listed as a 1x1 convolution; the code used a 1x1
  transposed convolution, which is the same map.
- D(x, z)'s last layer is listed with a sigmoid: we keep the logit and put the sigmoid in the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

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
    act_dropout: float = 0.0  # dropout on the nonlinearity's input (after conv and BN)


@dataclass(frozen=True)
class Architecture:
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
    options: tuple[tuple[str, str], ...] = ()  # the named release-vs-table options, resolved (name, value)
    release_notes: tuple[str, ...] = ()  # one note per option: what it chose and whose choice it is


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

# The tables as printed, with the bias rules every script shares; ``architecture`` applies the options.
_CIFAR10_TABLE = Architecture(
    name="cifar10", table="Table 3", image_size=32, channels=3, z_dim=64,
    encoder=_encoder_32(128), decoder=DECODER_32,
    disc_x=(L(CONV, 5, 1, 32, False, 0.2, MAXOUT), L(CONV, 4, 2, 64, False, 0.5, MAXOUT),
            L(CONV, 4, 1, 128, False, 0.5, MAXOUT), L(CONV, 4, 2, 256, False, 0.5, MAXOUT),
            L(CONV, 4, 1, 512, False, 0.5, MAXOUT)),
    disc_z=(L(CONV, 1, 1, 512, False, 0.2, MAXOUT), L(CONV, 1, 1, 512, False, 0.5, MAXOUT)),
    disc_joint=(L(CONV, 1, 1, 1024, False, 0.5, MAXOUT, TIED), L(CONV, 1, 1, 1024, False, 0.5, MAXOUT, TIED),
                L(CONV, 1, 1, 1, False, 0.5, LINEAR, TIED)),
    leak=0.1, maxout_pieces=2, init_std=0.01, lr=1e-4, beta1=0.5, beta2=0.999, batch_size=100, epochs=6475,
    notes=("Table 3 gives D(x, z) a 1024-channel input; maxout halves D(x)'s and D(z)'s 512 maps, so the "
           "released code's joint input is 512 channels, which we follow",),
)

_SVHN_TABLE = Architecture(
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

_CELEBA_TABLE = Architecture(
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

_TINY_IMAGENET_TABLE = Architecture(
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


# --------------------------------------------------------------- where the released scripts differ
@dataclass(frozen=True)
class Choice:
    """One value of an option: how it edits the table's architecture, and the note the reports carry."""

    edit: Callable[[Architecture], Architecture]
    note: str


@dataclass(frozen=True)
class ArchOption:
    """A named place where a released script and its appendix table (or a library default) differ."""

    name: str
    default: str
    choices: Mapping[str, Choice]
    table: str | None = None  # the value that matches the appendix table, where the table speaks


def _edit_rows(arch: Architecture, part: str, edit: Callable[[int, Layer], Layer]) -> Architecture:
    return replace(arch, **{part: tuple(edit(i, row) for i, row in enumerate(getattr(arch, part)))})


def _same(arch: Architecture) -> Architecture:
    return arch


# (input dropout, dropout before the maxout) per D(x) row: ``apply_dropout(cg, INPUT of
# x_discriminator.layers[2::3], 0.5)`` on [conv1, maxout1, conv2, maxout2, ..., conv5, maxout5] hits
# conv2, maxout3 and conv5 (the slice was written for conv-BN-activation triples); layers[0] gets 0.2.
_CIFAR10_RELEASED_DX_DROPOUT = ((0.2, 0.0), (0.5, 0.0), (0.0, 0.5), (0.0, 0.0), (0.5, 0.0))

CIFAR10_DX_BIAS = ArchOption("dx_bias", default="untied", choices={
    "untied": Choice(lambda s: _edit_rows(s, "disc_x", lambda i, r: replace(r, bias=UNTIED)),
                     "CIFAR10 D(x) biases: an untied bias (one per channel and pixel) on all five convolutions, "
                     "as the released ali_cifar10.py builds them (no use_bias=False) under the Blocks of its "
                     "date: Convolutional's tied_biases defaulted to False until Blocks commit 3d51aebb "
                     "(2016-06-03); the script's last edit is 2016-06-01 [released code]"),
    "tied": Choice(lambda s: _edit_rows(s, "disc_x", lambda i, r: replace(r, bias=TIED)),
                   "CIFAR10 D(x) biases: a tied bias (one per channel) on all five convolutions, what the released "
                   "ali_cifar10.py builds under Blocks from 2016-06-03 on [deviation: a later library default]"),
    "first_layer": Choice(lambda s: _edit_rows(s, "disc_x", lambda i, r: replace(r, bias=TIED if i == 0 else NO_BIAS)),
                          "CIFAR10 D(x) biases: a tied bias on the first convolution only, as ali_cifar10.py's first "
                          "commit (0465792) and the SVHN, CelebA and Tiny ImageNet scripts [deviation: the released "
                          "script's final version biases all five]"),
})

CIFAR10_DX_DROPOUT = ArchOption("dx_dropout", default="released", table="table", choices={
    "released": Choice(lambda s: _edit_rows(s, "disc_x", lambda i, r: replace(
                           r, dropout=_CIFAR10_RELEASED_DX_DROPOUT[i][0], act_dropout=_CIFAR10_RELEASED_DX_DROPOUT[i][1])),
                       "CIFAR10 D(x) dropout: 0.2 on row 1's input, 0.5 on row 2's input, on row 3's convolution "
                       "output (before its maxout) and on row 5's input, none before rows 3 and 4: where the released "
                       "script's apply_dropout(x_discriminator.layers[2::3], 0.5) lands on its conv-maxout list "
                       "[released code; Table 3 prints 0.5 before rows 2-5]"),
    "table": Choice(_same, "CIFAR10 D(x) dropout: 0.2 before row 1 and 0.5 before rows 2-5, as Table 3 prints "
                           "[our choice: the released script drops rows 2, 3 (after its convolution) and 5]"),
})

CELEBA_DX = ArchOption("dx", default="released", table="table", choices={
    "released": Choice(lambda s: _edit_rows(s, "disc_x", lambda i, r: replace(
                           r, dropout=0.2, **({"bn": False, "bias": TIED} if i == 0 else {}))),
                       "CelebA D(x): row 1 without BN and with a tied bias, 0.2 dropout on every convolution's input, "
                       "as the released ali_celeba.py [released code; Table 5 prints BN on row 1 and no dropout]"),
    "table": Choice(_same, "CelebA D(x): BN on row 1 and no dropout, as Table 5 prints [our choice: the released "
                           "script has no BN on row 1 and 0.2 dropout on every convolution's input]"),
})

TINY_IMAGENET_DZ_BIAS = ArchOption("dz_bias", default="released", choices={
    "released": Choice(lambda s: _edit_rows(s, "disc_z", lambda i, r: replace(r, bias=TIED)),
                       "Tiny ImageNet D(z): a bias on both convolutions, as the released ali_tiny_imagenet.py builds "
                       "them (no use_bias=False; the other scripts' D(z) have none) [released code]"),
    "none": Choice(_same, "Tiny ImageNet D(z): no biases, as the other scripts' D(z) [deviation from the released "
                          "script]"),
})

TINY_IMAGENET_RELEASED_EPOCHS = 1000  # ali_tiny_imagenet.py's NUM_EPOCHS
TINY_IMAGENET_EPOCHS = ArchOption("epochs", default="table", table="table", choices={
    "table": Choice(_same, "Tiny ImageNet epochs: 125, as Table 6 [our choice: the released ali_tiny_imagenet.py "
                           "says NUM_EPOCHS = 1000, a FinishAfter cap kept from its first commit, while the CIFAR10 "
                           "(1000 -> 6475) and CelebA (1000 -> 123) scripts were edited to their tables' lengths]"),
    "released": Choice(lambda s: replace(s, epochs=TINY_IMAGENET_RELEASED_EPOCHS),
                       "Tiny ImageNet epochs: 1000, the released script's NUM_EPOCHS [released code; Table 6 prints "
                       "125]"),
})

OPTIONS: dict[str, tuple[ArchOption, ...]] = {
    "cifar10": (CIFAR10_DX_BIAS, CIFAR10_DX_DROPOUT),
    "svhn": (),  # the released ali_svhn.py and Table 4 agree
    "celeba": (CELEBA_DX,),
    "tiny_imagenet": (TINY_IMAGENET_DZ_BIAS, TINY_IMAGENET_EPOCHS),
}
_TABLES = {s.name: s for s in (_CIFAR10_TABLE, _SVHN_TABLE, _CELEBA_TABLE, _TINY_IMAGENET_TABLE)}


def architecture(name: str, options: Mapping[str, str] | None = None) -> Architecture:
    """The architecture ``name`` with each option at ``options[option]`` or its default.

    Raises ValueError naming the architecture, the option and the accepted values on a bad name.
    """
    if name not in _TABLES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(_TABLES)}")
    known = {opt.name: opt for opt in OPTIONS[name]}
    unknown = sorted(set(options or {}) - set(known))
    if unknown:
        raise ValueError(f"architecture {name!r} has no option {unknown}; its options: {sorted(known) or 'none'}")
    arch, chosen, notes = _TABLES[name], [], []
    for opt in OPTIONS[name]:
        value = (options or {}).get(opt.name, opt.default)
        if value not in opt.choices:
            raise ValueError(f"option {opt.name!r} of architecture {name!r} must be one of "
                             f"{list(opt.choices)}, got {value!r}")
        arch = opt.choices[value].edit(arch)
        chosen.append((opt.name, value))
        notes.append(opt.choices[value].note)
    return replace(arch, options=tuple(chosen), release_notes=tuple(notes))


def table_options(name: str) -> dict[str, str]:
    """The option values that follow the appendix table where it speaks (the rest stay at their defaults)."""
    return {opt.name: opt.table for opt in OPTIONS[name] if opt.table is not None}


def arch_notes(arch: Architecture) -> tuple[str, ...]:
    """Every note a report carries for this architecture: the table gaps, then each option's choice."""
    return arch.notes + arch.release_notes


ARCHITECTURES = {name: architecture(name) for name in _TABLES}  # the defaults: the released scripts, as noted
CIFAR10, SVHN, CELEBA, TINY_IMAGENET = (ARCHITECTURES[n] for n in ("cifar10", "svhn", "celeba", "tiny_imagenet"))


def out_size(layer: Layer, size: int) -> int:
    """Spatial size after a layer with no padding (the released code's 'valid' border mode)."""
    if layer.op == CONV:
        return (size - layer.kernel) // layer.stride + 1
    return (size - 1) * layer.stride + layer.kernel
