"""Published numbers, typed in once, each with its error bar's meaning and its source. Tables print them
only in columns named for their source (``paper_*``, ``pacgan_*``), never as ours.

``PUBLISHED`` holds every number as a ``Published`` record: value, error (None when none is printed),
what the error means (``convention``), over how many runs when the source says (``n_runs``), and the
source (paper, table or figure). The dicts below it (``PAPER_MIXTURE``, ``PACGAN_MIXTURE``,
``PAPER_TABLE1_SVM``, ``PAPER_TABLE1_KPLUS1``, ``PAPER_TABLE2``) are the views the tables read, built
from ``PUBLISHED`` so no number is typed twice.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a published "+/-" means. Each record says which applies; never assume 1 sigma.
NO_ERROR = "no error bar published"
UNSTATED = "unstated: the source does not say what its +/- is"
SIGMA_3 = "3 sigma (3 x the standard deviation over runs)"
STD_DDOF0_TRIALS = "1 sigma: numpy.std (ddof=0) over the SVM trials, as the released script prints it"
SEM = "standard error of the mean over the runs"
RANGE = "none: an extreme over the runs (min or max)"
CONVENTIONS = (NO_ERROR, UNSTATED, SIGMA_3, STD_DDOF0_TRIALS, SEM, RANGE)

ALI_PAPER = "Dumoulin et al. (2017), ICLR"
SALIMANS = "Salimans et al. (2016), Improved Techniques for Training GANs"
PACGAN = "Lin et al. (2018), PacGAN"


@dataclass(frozen=True)
class Published:
    """One published number and what its error bar means."""

    value: float
    error: float | None
    convention: str
    source: str
    n_runs: int | None = None  # runs (or trials) behind the mean and error bar, when the source says
    note: str = ""

    def __post_init__(self):
        if self.convention not in CONVENTIONS:
            raise ValueError(f"unknown error convention {self.convention!r}; known: {CONVENTIONS}")
        if (self.error is None) != (self.convention in (NO_ERROR, RANGE)):
            raise ValueError(f"error {self.error!r} does not fit convention {self.convention!r}")

    @property
    def sigma(self) -> float | None:
        """The error as one standard deviation, where the convention allows it; None otherwise."""
        if self.convention == SIGMA_3:
            return self.error / 3
        if self.convention == STD_DDOF0_TRIALS:
            return self.error
        return None


_MIX_TEXT = f"{ALI_PAPER}, section 4.5 text (10,000 samples per run, the paper's mode count)"
_MIX_NOTE = "10 runs with random lr, beta1 and init std; the text says neither std nor sample/population"
_PACGAN_SRC = (f"{PACGAN}, 2D-grid results: the authors' ALI code re-run with fixed hyperparameters "
               "(lr 1e-4, Blocks beta1 0.8, 400 epochs), 2,500 samples, 3 std")
_T1 = f"{ALI_PAPER}, Table 1 (SVHN, 1,000 labels)"
_T2 = f"{ALI_PAPER}, Table 2 (CIFAR10)"
_SALIMANS_CIFAR = (f"quoted from {SALIMANS}, Table 2, whose caption says 'Results are averaged over 10 "
                   "splits of data' and not what the +/- is")
_SALIMANS_SVHN = (f"quoted from {SALIMANS}, section 6.3 (SVHN: 'the same architecture and experimental setup "
                  "as for CIFAR-10'); the number of runs and the meaning of the +/- are not stated")

PUBLISHED: dict[str, Published] = {
    # --- section 4.5, the 25-mode mixture
    "mixture.paper.ali.modes": Published(13.4, 5.8, UNSTATED, _MIX_TEXT, 10, _MIX_NOTE),
    "mixture.paper.ali.modes_min": Published(8, None, RANGE, _MIX_TEXT, 10),
    "mixture.paper.ali.modes_max": Published(25, None, RANGE, _MIX_TEXT, 10),
    "mixture.paper.gan.modes": Published(10.4, 9.2, UNSTATED, _MIX_TEXT, 10, _MIX_NOTE),
    "mixture.paper.gan.modes_min": Published(1, None, RANGE, _MIX_TEXT, 10),
    "mixture.paper.gan.modes_max": Published(22, None, RANGE, _MIX_TEXT, 10),
    "mixture.pacgan.ali.strict_modes": Published(24.1, 0.4, SEM, _PACGAN_SRC, 10),
    "mixture.pacgan.ali.hq_pct": Published(95.7, 0.6, SEM, _PACGAN_SRC, 10),
    "mixture.pacgan.ali.reverse_kl": Published(0.14, 0.03, SEM, _PACGAN_SRC, 10),
    "mixture.pacgan.gan.strict_modes": Published(17.3, 0.8, SEM, _PACGAN_SRC, 10),
    "mixture.pacgan.gan.hq_pct": Published(94.8, 0.7, SEM, _PACGAN_SRC, 10),
    "mixture.pacgan.gan.reverse_kl": Published(0.70, 0.07, SEM, _PACGAN_SRC, 10),
    # --- Table 1, SVHN, 1,000 labels: L2-SVM rows
    "table1.svhn.l2svm.ali": Published(
        19.14, 0.50, STD_DDOF0_TRIALS, _T1, 100,
        "the text: 'measured for 100 different SVMs ... along with its standard deviation'; "
        "experiments/semi_supervised_svhn.py prints numpy.std (ddof=0)"),
    "table1.svhn.l2svm.dcgan": Published(22.18, None, NO_ERROR, f"{_T1}, quoted from Radford et al. (2015)"),
    # --- Table 1, K+1 rows
    "table1.svhn.kplus1.ali": Published(7.42, 0.65, UNSTATED, _T1, None,
                                        "Table 1 gives no convention and no run count for this +/-"),
    "table1.svhn.kplus1.gan_fm": Published(8.11, 1.3, UNSTATED, f"{_T1}, {_SALIMANS_SVHN}"),
    # --- Table 1, rows quoted from other papers, without error bars
    "table1.svhn.vae_m1_m2": Published(36.02, None, NO_ERROR, f"{_T1}, quoted from Kingma et al. (2014)"),
    "table1.svhn.swwae_dropout": Published(23.56, None, NO_ERROR, f"{_T1}, quoted from Zhao et al. (2015)"),
    "table1.svhn.sdgm": Published(16.61, None, NO_ERROR, f"{_T1}, quoted from Maaloe et al. (2016)"),
    # --- Table 2, CIFAR10: error % by number of labels
    **{f"table2.cifar10.ali_kplus1.{n}": Published(v, e, SIGMA_3, _T2, None,
                                                   "caption: 'For ALI, error bars correspond to 3 times the "
                                                   "standard deviation'; the number of runs is not stated")
       for n, v, e in ((1000, 19.98, 0.89), (2000, 19.09, 0.44), (4000, 17.99, 1.62), (8000, 17.05, 1.49))},
    **{f"table2.cifar10.gan_fm.{n}": Published(v, e, UNSTATED, f"{_T2}, {_SALIMANS_CIFAR}", 10)
       for n, v, e in ((1000, 21.83, 2.01), (2000, 19.61, 2.09), (4000, 18.63, 2.32), (8000, 17.72, 1.82))},
    "table2.cifar10.ladder.4000": Published(20.40, None, NO_ERROR, f"{_T2}, quoted from Rasmus et al. (2015)"),
    "table2.cifar10.catgan.4000": Published(19.58, None, NO_ERROR, f"{_T2}, quoted from Springenberg (2015)"),
}


def published(key: str) -> Published:
    """The record for ``key``; a KeyError names the known keys."""
    if key not in PUBLISHED:
        raise KeyError(f"no published number {key!r}; known: {sorted(PUBLISHED)}")
    return PUBLISHED[key]


# ------------------------------------------------------------- the views the tables read (legacy names)
def _mixture_view(source: str, model: str, metrics: tuple[str, ...], error_key: str) -> dict:
    out = {}
    for metric in metrics:
        rec = PUBLISHED[f"mixture.{source}.{model}.{metric}"]
        out[f"{metric}_mean"] = rec.value
        out[f"{metric}_{error_key}"] = rec.error
    return out


# The paper's mode count: mean, +/- (convention unstated) and range over 10 runs per model.
PAPER_MIXTURE = {
    m: {**_mixture_view("paper", m, ("modes",), "std"),
        "modes_min": PUBLISHED[f"mixture.paper.{m}.modes_min"].value,
        "modes_max": PUBLISHED[f"mixture.paper.{m}.modes_max"].value,
        "error_convention": PUBLISHED[f"mixture.paper.{m}.modes"].convention}
    for m in ("ali", "gan")
}

# PacGAN's re-run, the stricter metrics; +/- is the standard error over 10 trials.
PACGAN_MIXTURE = {
    m: {**_mixture_view("pacgan", m, ("strict_modes", "hq_pct", "reverse_kl"), "sem"),
        "error_convention": PUBLISHED[f"mixture.pacgan.{m}.strict_modes"].convention}
    for m in ("ali", "gan")
}
PACGAN_EPOCHS = 400

# Which published protocol each of our protocol kinds stands beside.
MIXTURE_REFERENCES = {"random": ("paper", PAPER_MIXTURE), "pacgan": ("pacgan", PACGAN_MIXTURE)}


def _row_view(key: str, label: str) -> dict:
    rec = PUBLISHED[key]
    view = {"paper_model": label, "paper_error_pct": rec.value, "paper_error_convention": rec.convention,
            "paper_source": rec.source}
    if rec.error is not None:
        view["paper_error_std"] = rec.error  # legacy column name: read it with paper_error_convention
        view["paper_error"] = rec.error
    return view


# Table 1 (SVHN, 1,000 labels): L2-SVM rows. DCGAN + L2-SVM is Radford et al.'s number (not our GAN).
PAPER_TABLE1_SVM = {
    "ali": _row_view("table1.svhn.l2svm.ali", "ALI (L2-SVM)"),
    "gan": _row_view("table1.svhn.l2svm.dcgan", "DCGAN + L2-SVM (Radford et al., quoted)"),
}

# Table 1, K+1 rows: neither +/- states its convention. GAN (FM) is Salimans et al.'s number.
PAPER_TABLE1_KPLUS1 = {
    "ali_kplus1": _row_view("table1.svhn.kplus1.ali", "ALI (ours, K+1, no feature matching)"),
    "gan_fm": _row_view("table1.svhn.kplus1.gan_fm", "GAN (feature matching) (Salimans et al., quoted)"),
}

# Table 2 (CIFAR10): {model: {labels: (mean, error)}}; ALI's error is 3 sigma, GAN (FM)'s is Salimans
# et al.'s unstated +/- over 10 splits: see PAPER_TABLE2_CONVENTION.
PAPER_TABLE2 = {
    model: {n: (PUBLISHED[f"table2.cifar10.{model}.{n}"].value, PUBLISHED[f"table2.cifar10.{model}.{n}"].error)
            for n in (1000, 2000, 4000, 8000)}
    for model in ("ali_kplus1", "gan_fm")
}
PAPER_TABLE2_CONVENTION = {model: PUBLISHED[f"table2.cifar10.{model}.1000"].convention for model in PAPER_TABLE2}


# --------------------------------------------- how our rows relate to the published ones (notes, not numbers)
# Our "gan_fm" is feature matching trained on the appendix tables' networks, not Salimans et al.'s model
# (openai/improved-gan, mnist_svhn_cifar10/train_{cifar,svhn}_feature_matching.py). Its row in our tables:
GAN_FM_ROW = "GAN + feature matching on the appendix-table networks (ours, not Salimans et al.'s model)"
GAN_FM_DIFFERENCES = (
    "D: Salimans et al.'s is a 9-layer weight-normalised convolutional net (CIFAR10 3x 96 and 3x 192 3x3 "
    "convolutions, a valid 3x3 and two 1x1 of 192; SVHN 64 and 128 maps), leaky ReLU 0.2, dropout 0.2 on the "
    "input and 0.5 after each stride-2 block, global mean pooling, a weight-normalised dense layer to 10 logits, "
    "data-dependent initialisation on 500 labelled images; ours is the appendix table's D(x) (Table 4 with BN, "
    "Table 3 with maxout) with a 1x1 convolution to K logits",
    "G: theirs maps 100-d uniform noise through a dense 4x4x512 layer and three 5x5 transposed convolutions "
    "(BN and ReLU, a weight-normalised last layer) to tanh pixels in [-1, 1]; ours is the appendix table's "
    "decoder from N(0, I) noise of the table's latent size to sigmoid pixels in [0, 1]",
    "feature matching: theirs matches the mean of D's last hidden layer (after global pooling) on a second, "
    "independently shuffled unlabelled batch; ours on D(x)'s last hidden layer with the step's own unlabelled "
    "batch",
    "test weights: theirs averages the weights of a D without BN, which is exact; ours averages the weights of a "
    "D with BN (SVHN) and re-estimates its BN statistics under the averages (ali.eval.polyak_bn)",
)
KPLUS1_ALI_UPDATE = (
    "ALI K+1 update (our choice, the paper gives none; improved-gan's scheme): alternating steps, D on "
    "L_lab + w L_unl, then the encoder and decoder on the ALI game against the K+1 D with fresh noise; D is "
    "called separately on the labelled pairs (x_l, G_z(x_l)), the q-pairs (x, G_z(x)) and the p-pairs "
    "(G_x(z), z), as improved-gan's separate calls, so a D with BN normalises each batch alone"
)
KPLUS1_POLYAK_BN = (
    "K+1 test error: Polyak-averaged D (and, for ALI, encoder) weights with BN statistics re-estimated by one "
    "pass over the training images under those weights (cumulative average, train mode as in training); "
    "beside it: the averaged weights with the last weights' BN statistics, and the last weights' own error"
)
SVM_STD_NOTE = ("the paper's +/- 0.50 is numpy.std (ddof=0) over 100 SVMs, as the released script prints it; "
                "our std columns are named for their ddof")


# How many runs each published +/- is taken over, where the source says so (the report's verdicts turn
# a std into a standard error with it), read from the records above. Table 1's K+1 rows and Table 2 do not say.
PAPER_MIXTURE_N_RUNS = PUBLISHED["mixture.paper.ali.modes"].n_runs          # section 4.5: 10 runs per model
PACGAN_N_TRIALS = PUBLISHED["mixture.pacgan.ali.strict_modes"].n_runs      # PacGAN: 10 trials
PAPER_TABLE1_SVM_N_TRIALS = PUBLISHED["table1.svhn.l2svm.ali"].n_runs      # section 4.3: 100 SVMs
