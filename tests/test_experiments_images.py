"""Unsupervised ALI / GAN / VAE on images (ali.experiments.images): the plan of runs, the models it
builds, tiny real training runs on the digits stand-in (no files needed), resume, the uint8 input
path, the VAE's Bernoulli likelihood, the figure grids and the CLI commands around them.

Every training run here uses the SVHN architecture (Table 4) at batch 4 for a handful of steps: a
step costs well under a second on a CPU, so the whole file runs in tens of seconds.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PAPER, SMOKE
from PIL import Image

from ali import cli
from ali.config import ConfigError, load_config
from ali.data import images as image_data
from ali.experiments import images as im
from ali.experiments.base import RunContext
from ali.train.record import MODEL_FILE, RECORD, SPEC, read_record
from ali.nets.conv import ConvDecoder, ConvEncoder, JointConvDiscriminator, UntiedBias
from ali.nets.stochastic import GaussianEncoder
from ali.optim import AdamConfig
from ali.report import image_figures as figs
from ali.data.batches import as_model_input
from ali.train.checkpoint import CHECKPOINT
from ali.train.loop import train
from ali.train.runtime import seed_everything

MODELS = ("ali", "gan", "vae")
PAD, TILE = 1, 32  # image_figures saves with padding 1; every image here is 3x32x32


@pytest.fixture(scope="module")
def paper_plan() -> dict:
    return im.plan(load_config(PAPER))


@pytest.fixture(scope="module")
def smoke_cfg() -> dict:
    return load_config(SMOKE)


@pytest.fixture(scope="module")
def smoke_plan(smoke_cfg) -> dict:
    return im.plan(smoke_cfg)


def tiny_spec(smoke_plan: dict, model: str, **overrides) -> dict:
    """The smoke preset's digits run, cut to batch 4 and a few steps."""
    spec = copy.deepcopy(smoke_plan[f"digits/{model}/seed0"])
    spec.update({"batch_size": 4, "steps": 4, **overrides})
    return spec


def grid_size(n_images: int, nrow: int) -> tuple[int, int]:
    """(width, height) in pixels of torchvision's make_grid with padding 1 around 32x32 tiles."""
    cols = min(nrow, n_images)
    rows = math.ceil(n_images / cols)
    return cols * (TILE + PAD) + PAD, rows * (TILE + PAD) + PAD


def tile(png: np.ndarray, row: int, col: int) -> np.ndarray:
    """Tile (row, col), 0-based, of a saved grid, as (3, 32, 32) uint8."""
    y, x = PAD + row * (TILE + PAD), PAD + col * (TILE + PAD)
    return png[y:y + TILE, x:x + TILE].transpose(2, 0, 1)


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def as_png_pixels(x: torch.Tensor) -> np.ndarray:
    """What save_image writes for float pixels in [0, 1]."""
    return (x.clamp(0, 1) * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def untied_bias(model) -> torch.Tensor:
    biases = [m.bias for m in model.decoder.net if isinstance(m, UntiedBias)]
    assert len(biases) == 1
    return biases[0].detach()


def log_odds_of_mean_pixel(spec: dict) -> torch.Tensor:
    x, _ = image_data.load("digits", spec["train_split"])
    x = torch.from_numpy(x[spec["train_rows"][0]:spec["train_rows"][1]][:500]).float() / 255.0
    p = x.mean(0).clamp(1e-7, 1 - 1e-7)
    return torch.log(p / (1 - p))


# ------------------------------------------------------------------------------------------ plan
def test_paper_plan_has_svhn_and_cifar10_times_every_model(paper_plan):
    svm_seeds = {f"svhn/{m}/seed{k}" for m in MODELS for k in (1, 2)}  # svm.image_seeds: the SVM's sources
    assert set(paper_plan) == {f"{d}/{m}/seed0" for d in ("svhn", "cifar10") for m in MODELS} | svm_seeds
    for key, spec in paper_plan.items():
        dataset, model, seed = key.split("/")
        assert spec["experiment"] == "images" and spec["preset"] == "paper"
        assert (spec["dataset"], spec["model"], f"seed{spec['seed']}", spec["arch"]) == (dataset, model, seed, dataset)
        assert spec["update"] == "simultaneous" and spec["precision"] == "fp32" and "amp" not in spec
        assert not {"capture", "channels_last"} & set(spec)  # execution choices: the run context's, not the spec's
        assert spec["init_std"] == 0.01 and spec["heldout_split"] == "test"
        assert ("vae_likelihood" in spec) == (model == "vae")
    assert paper_plan["svhn/vae/seed0"]["vae_likelihood"] == "bernoulli"


def test_paper_plan_svhn_trains_on_all_of_extra(paper_plan):
    for model in MODELS:
        spec = paper_plan[f"svhn/{model}/seed0"]
        assert spec["train_split"] == "extra" and spec["train_rows"] == [0, 531_131]
        assert spec["epochs"] == 100 and spec["batch_size"] == 100  # Table 4
        assert spec["steps"] == 100 * (531_131 // 100) == 531_100
    assert im.training_rows("svhn") == ("extra", [0, 531_131])


def test_paper_plan_cifar10_trains_on_the_first_45000_train_rows(paper_plan):
    for model in MODELS:
        spec = paper_plan[f"cifar10/{model}/seed0"]
        assert spec["train_split"] == "train" and spec["train_rows"] == [0, 45_000]
        assert spec["epochs"] == 6475 and spec["batch_size"] == 100  # Table 3
        assert spec["steps"] == 6475 * (45_000 // 100)
    assert im.training_rows("cifar10") == ("train", [0, 45_000])
    assert im.training_rows("celeba") == ("train", None)  # no protocol: all of 'train'


def test_paper_plan_uses_the_tables_adam_in_torch_convention(paper_plan):
    for spec in paper_plan.values():
        assert spec["adam"] == {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "convention": "torch"}
        assert AdamConfig(**spec["adam"]).torch_betas() == (0.5, 0.999)


def test_smoke_plan_trains_digits_on_the_svhn_architecture(smoke_plan):
    assert set(smoke_plan) == {f"digits/{m}/seed0" for m in MODELS}
    for spec in smoke_plan.values():
        assert spec["preset"] == "smoke" and spec["dataset"] == "digits" and spec["arch"] == "svhn"
        assert spec["train_split"] == "train" and spec["train_rows"] == [0, 1197]
        assert spec["epochs"] == 3 and spec["batch_size"] == 100
        assert spec["steps"] == 3 * (1197 // 100)  # the smoke preset trains digits for 3 epochs


def _set(cfg: dict, dotted: str, value) -> dict:
    node = cfg
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return cfg


@pytest.mark.parametrize("key,value,named", [
    ("images.train", ["mnist"], "images.train"),
    ("images.models", ["ali", "wgan"], "images.models"),
    ("images.seeds", [0, -1], "images.seeds"),
    ("images.seeds", [], "images.seeds"),
    ("images.datasets.digits.batch_size", 5000, "images.datasets.digits.batch_size"),
    ("images.datasets.digits.arch", "resnet", "images.datasets.digits.arch"),
    ("images.datasets.digits.epochs", 0, "images.datasets.digits.epochs"),
    ("images.datasets.digits.heldout_split", "valid", "images.datasets.digits.heldout_split"),
    ("images.update", "sideways", "images.update"),
    ("images.vae_likelihood", "gaussian", "images.vae_likelihood"),
    ("images.amp", "yes", "images.amp"),
    ("images.precision", "fp16", "images.precision"),
    ("images.capture", "always", "images.capture"),
])
def test_bad_config_value_raises_config_error_naming_the_key(smoke_cfg, key, value, named):
    cfg = _set(copy.deepcopy(smoke_cfg), key, value)
    with pytest.raises(ConfigError) as err:
        im.plan(cfg)
    assert named in str(err.value)


def test_boolean_seed_is_rejected(smoke_cfg):
    cfg = _set(copy.deepcopy(smoke_cfg), "images.seeds", [True])
    with pytest.raises(ConfigError, match=r"images\.seeds"):
        im.plan(cfg)


def test_dataset_defined_but_unknown_to_the_loader_is_named(smoke_cfg):
    cfg = copy.deepcopy(smoke_cfg)
    cfg["images"]["train"] = ["mnist"]
    cfg["images"]["datasets"]["mnist"] = {"arch": "svhn", "heldout_split": "test"}
    with pytest.raises(ConfigError, match=r"images\.datasets\.mnist"):
        im.plan(cfg)


def test_batch_size_equal_to_the_training_set_is_accepted(smoke_cfg):
    cfg = _set(copy.deepcopy(smoke_cfg), "images.datasets.digits.batch_size", 1197)
    assert all(s["steps"] == 3 for s in im.plan(cfg).values())  # one step per epoch, the smoke preset's 3 epochs


# ----------------------------------------------------------------------------------------- build
def test_build_ali(smoke_plan):
    model = im.build(smoke_plan["digits/ali/seed0"])
    assert model.name == "ali" and model.has_encoder
    assert isinstance(model.encoder, GaussianEncoder) and isinstance(model.encoder.net, ConvEncoder)
    assert isinstance(model.decoder, ConvDecoder)
    assert isinstance(model.discriminator, JointConvDiscriminator) and model.discriminator.dz is not None
    assert set(model.optimizers) == {"d", "g"}
    d_params = {id(p) for g in model.optimizers["d"].param_groups for p in g["params"]}
    g_params = {id(p) for g in model.optimizers["g"].param_groups for p in g["params"]}
    assert d_params == {id(p) for p in model.discriminator.parameters()}
    assert g_params == {id(p) for p in [*model.encoder.parameters(), *model.decoder.parameters()]}
    for opt in model.optimizers.values():
        group = opt.param_groups[0]
        assert group["lr"] == 1e-4 and group["betas"] == (0.5, 0.999)


def test_build_gan_has_no_encoder(smoke_plan):
    model = im.build(smoke_plan["digits/gan/seed0"])
    assert model.name == "gan" and not model.has_encoder
    assert not hasattr(model, "encoder")
    assert isinstance(model.decoder, ConvDecoder) and model.discriminator.dz is None
    assert set(model.optimizers) == {"d", "g"}
    g_params = {id(p) for g in model.optimizers["g"].param_groups for p in g["params"]}
    assert g_params == {id(p) for p in model.decoder.parameters()}
    with pytest.raises(NotImplementedError, match="no encoder"):
        model.encode(torch.zeros(1, 3, 32, 32))


def test_build_vae_has_one_optimiser_and_a_bernoulli_likelihood(smoke_plan):
    model = im.build(smoke_plan["digits/vae/seed0"])
    assert model.name == "vae" and model.has_encoder and model.likelihood == "bernoulli"
    assert isinstance(model.encoder.net, ConvEncoder) and isinstance(model.decoder, ConvDecoder)
    assert not hasattr(model, "discriminator")
    assert set(model.optimizers) == {"model"}
    params = {id(p) for g in model.optimizers["model"].param_groups for p in g["params"]}
    assert params == {id(p) for p in model.parameters()}


def test_build_initialises_weights_from_init_std(smoke_plan):
    torch.manual_seed(0)
    model = im.build(smoke_plan["digits/ali/seed0"])
    big = max((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), key=lambda m: m.weight.numel())
    assert big.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert torch.all(untied_bias(model) == 0)  # data sets it in train_run, not build


def test_build_takes_precision_from_spec_and_autocast_stays_off_on_cpu(smoke_plan):
    assert im.build(smoke_plan["digits/vae/seed0"]).options.precision == "fp32"
    model = im.build({**smoke_plan["digits/vae/seed0"], "precision": "bf16"})
    assert model.options.precision == "bf16"
    old_spec = {k: v for k, v in smoke_plan["digits/vae/seed0"].items() if k != "precision"}
    assert im.build({**old_spec, "amp": True}).options.precision == "bf16"  # an older spec's amp flag
    x = torch.zeros(2, 3, 32, 32)
    with model.autocast(x):
        assert (x.new_ones(4, 4) @ x.new_ones(4, 4)).dtype == torch.float32  # bf16 only on CUDA


def test_config_amp_true_without_precision_plans_bf16(smoke_cfg):
    cfg = _set(copy.deepcopy(smoke_cfg), "images.amp", True)
    del cfg["images"]["precision"]  # an older config: amp, and no precision key
    assert {s["precision"] for s in im.plan(cfg).values()} == {"bf16"}


def test_build_channels_last(smoke_plan):
    plain = im.build(smoke_plan["digits/ali/seed0"])
    assert plain.channels_last is False
    model = im.build(smoke_plan["digits/ali/seed0"],
                     RunContext(channels_last=True).step_options(smoke_plan["digits/ali/seed0"]))
    assert model.channels_last is True
    four_d = [p for p in model.parameters() if p.dim() == 4]
    assert four_d and all(p.is_contiguous(memory_format=torch.channels_last) for p in four_d)
    assert any(not p.is_contiguous() for p in four_d)  # the k x k kernels really changed layout
    opt_params = {id(p) for opt in model.optimizers.values() for g in opt.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in model.parameters()}  # the optimisers hold the converted ones
    model.eval()
    with torch.no_grad():
        assert model.decode(model.prior(2)).shape == (2, 3, 32, 32)


# ------------------------------------------------------------------------------- tiny real runs
@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, smoke_plan) -> dict[str, tuple[Path, dict, dict]]:
    """One 4-step digits run per model: {model: (run_dir, spec, record)}."""
    root = tmp_path_factory.mktemp("image_runs")
    runs = {}
    for model in MODELS:
        spec = tiny_spec(smoke_plan, model)
        run_dir = root / model
        record = im.train_run(spec, run_dir, data_root=root / "data", device="cpu", checkpoint_every=2,
                              log_every=1, progress=False)
        runs[model] = (run_dir, spec, record)
    return runs


@pytest.mark.parametrize("model", MODELS)
def test_tiny_run_writes_record_and_weights(tiny_runs, model):
    run_dir, spec, record = tiny_runs[model]
    assert (run_dir / MODEL_FILE).is_file() and (run_dir / SPEC).is_file()
    on_disk = read_record(run_dir)
    assert on_disk == json.loads(json.dumps(record))
    assert on_disk["status"] == "ok" and on_disk["steps_done"] == 4 and not on_disk["diverged"]
    assert on_disk["resumed_from_step"] is None
    assert on_disk["spec"] == spec and json.loads((run_dir / SPEC).read_text()) == spec
    assert on_disk["config_hash"]
    prov = on_disk["provenance"]
    assert {"code_version", "packages", "device"} <= set(prov) and "torch" in json.dumps(prov["packages"])
    expected = {"loss"} if model == "vae" else {"loss_d", "loss_g"}
    assert set(on_disk["final_losses"]) == expected
    assert all(math.isfinite(v) for v in on_disk["final_losses"].values())


@pytest.mark.parametrize("model", MODELS)
def test_load_gives_an_eval_model_whose_samples_are_images(tiny_runs, model):
    run_dir, spec, _ = tiny_runs[model]
    net, record = im.load(run_dir)
    assert not net.training and record["spec"] == spec and net.name == model
    with torch.no_grad():
        x = net.decode(net.prior(5))
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    saved = torch.load(run_dir / MODEL_FILE, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items())


def test_decoder_output_bias_starts_at_the_log_odds_of_the_mean_pixel(tmp_path, smoke_plan):
    spec = tiny_spec(smoke_plan, "gan", steps=0)  # no training step: model.pt holds the initial weights
    record = im.train_run(spec, tmp_path / "run", data_root=tmp_path / "data", device="cpu", progress=False)
    assert record["status"] == "ok" and record["steps_done"] == 0
    model, _ = im.load(tmp_path / "run")
    bias, target = untied_bias(model), log_odds_of_mean_pixel(spec)
    assert bias.shape == (3, 32, 32)
    assert torch.allclose(bias, target, atol=1e-6)
    assert bias.abs().max() > 1  # far from the zero that build() leaves


def test_trained_runs_keep_the_data_initialised_output_bias(tiny_runs):
    run_dir, spec, _ = tiny_runs["ali"]
    model, _ = im.load(run_dir)
    fresh = im.build(spec)
    assert torch.all(untied_bias(fresh) == 0)
    # Four Adam steps at lr 1e-4 move the bias by about 4e-4 at most: it is the data's log-odds, not 0.
    assert torch.allclose(untied_bias(model), log_odds_of_mean_pixel(spec), atol=1e-2)


def test_killed_and_resumed_run_is_bit_identical(tmp_path, tiny_runs):
    ref_dir, spec, ref_record = tiny_runs["ali"]
    run_dir = tmp_path / "killed"
    kwargs = dict(data_root=tmp_path / "data", device="cpu", checkpoint_every=2, log_every=1, progress=False)
    with pytest.raises(KeyboardInterrupt):
        im.train_run(spec, run_dir, stop_at=3, **kwargs)  # dies after step 3; checkpoint at step 2
    assert (run_dir / CHECKPOINT).is_file() and not (run_dir / RECORD).exists()
    record = im.train_run(spec, run_dir, **kwargs)
    assert record["resumed_from_step"] == 2 and record["steps_done"] == 4 and record["status"] == "ok"
    assert record["config_hash"] == ref_record["config_hash"]
    assert record["final_losses"] == ref_record["final_losses"]
    ref = torch.load(ref_dir / MODEL_FILE, weights_only=True)
    got = torch.load(run_dir / MODEL_FILE, weights_only=True)
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref), [k for k in ref if not torch.equal(ref[k], got[k])]


# -------------------------------------------------------------------------------- uint8 input
def test_as_model_input_scales_uint8_and_passes_floats_through():
    x = torch.tensor([[[[0, 128, 255]]]], dtype=torch.uint8)
    y = as_model_input(x)
    assert y.dtype == torch.float32
    assert torch.equal(y.flatten(), torch.tensor([0.0, 128 / 255, 1.0], dtype=torch.float32))
    assert y.max().item() == 1.0  # exactly
    f = torch.rand(2, 3, 4, 4)
    assert as_model_input(f) is f
    cl = as_model_input(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), channels_last=True)
    assert cl.dtype == torch.float32 and cl.is_contiguous(memory_format=torch.channels_last)


def test_training_on_uint8_equals_training_on_the_same_data_as_float(tmp_path, smoke_plan):
    spec = tiny_spec(smoke_plan, "vae", steps=2)
    images = torch.from_numpy(image_data.load("digits", "train")[0][:16].copy())
    assert images.dtype == torch.uint8

    def run(data: torch.Tensor, name: str) -> dict:
        seed_everything(spec["seed"])
        model = im.build(spec)
        train(model, data, steps=spec["steps"], batch_size=spec["batch_size"], seed=spec["seed"],
              run_dir=tmp_path / name, run_hash="h", checkpoint_every=100, log_every=1, progress=False)
        return model.state_dict()

    a = run(images, "uint8")
    b = run(images.float() / 255.0, "float")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-6, atol=1e-7) for k in a)
    fresh = im.build(spec).state_dict()
    assert any(not torch.equal(a[k], fresh[k]) for k in a if a[k].is_floating_point())  # it trained


# ------------------------------------------------------------------------------------ VAE loss
def test_vae_bernoulli_nll_matches_a_hand_computation(smoke_plan):
    model = im.build(smoke_plan["digits/vae/seed0"])
    x = torch.tensor([[[0.0, 1.0], [0.25, 0.5]], [[1.0, 1.0], [0.0, 0.8]]])  # (2, 2, 2): any shape works
    p = torch.tensor([[[0.1, 0.9], [0.3, 0.5]], [[0.6, 0.99], [0.2, 0.7]]])
    xd, pd = x.double(), p.double()
    hand = -(xd * pd.log() + (1 - xd) * (1 - pd).log()).flatten(1).sum(1)
    got = model.nll(x, p)
    assert got.shape == (2,) and got.dtype == torch.float32
    assert torch.allclose(got.double(), hand, rtol=1e-6)
    # probabilities of exactly 0 or 1 stay finite (clamped)
    assert torch.isfinite(model.nll(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]))).all()


def test_vae_loss_runs_under_cpu_bf16_autocast(smoke_plan):
    torch.manual_seed(0)
    model = im.build(smoke_plan["digits/vae/seed0"])
    x = torch.rand(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(x)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# ------------------------------------------------------------------------------------- figures
class StubModel:
    """encode(x) = x flattened, decode(z) = 1 - z as an image: every tile is predictable."""

    has_encoder = True

    def prior(self, n: int) -> torch.Tensor:
        return torch.rand(n, 3 * TILE * TILE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (1 - z).view(-1, 3, TILE, TILE)


def test_samples_grid_geometry(tmp_path):
    out = tmp_path / "deep" / "samples.png"
    figs.samples_grid(StubModel(), 100, out)
    img = Image.open(out)
    assert img.format == "PNG" and img.size == grid_size(100, 10) == (331, 331)
    figs.samples_grid(StubModel(), 25, tmp_path / "s25.png")
    assert Image.open(tmp_path / "s25.png").size == grid_size(25, 10) == (331, 100)


def test_reconstructions_grid_interleaves_data_and_reconstructions(tmp_path):
    torch.manual_seed(1)
    x = torch.rand(7, 3, TILE, TILE)
    out = tmp_path / "recon.png"
    figs.reconstructions_grid(StubModel(), x, out)
    png = read_png(out)
    assert (png.shape[1], png.shape[0]) == grid_size(14, 10) == (331, 67)
    for i in range(7):
        row, col = divmod(2 * i, 10)
        data_tile, recon_tile = tile(png, row, col), tile(png, row, col + 1)
        # odd columns (1st, 3rd, ... counting from 1) are data, even ones their reconstructions
        assert np.abs(data_tile.astype(int) - as_png_pixels(x[i]).astype(int)).max() <= 1
        assert np.abs(recon_tile.astype(int) - as_png_pixels(1 - x[i]).astype(int)).max() <= 1
    assert np.all(png[0, :] == 255) and np.all(png[:, 0] == 255)  # white padding


def test_interpolation_grid_rows_go_from_a_to_b(tmp_path):
    torch.manual_seed(2)
    x_a, x_b = torch.rand(3, 3, TILE, TILE), torch.rand(3, 3, TILE, TILE)
    out = tmp_path / "interp.png"
    figs.interpolation_grid(StubModel(), x_a, x_b, 4, out)
    png = read_png(out)
    assert (png.shape[1], png.shape[0]) == grid_size(3 * 6, 6) == (199, 100)
    for r in range(3):
        assert np.abs(tile(png, r, 0).astype(int) - as_png_pixels(x_a[r]).astype(int)).max() <= 1
        assert np.abs(tile(png, r, 5).astype(int) - as_png_pixels(x_b[r]).astype(int)).max() <= 1
        for j, t in enumerate(torch.linspace(0, 1, 4)):
            expected = 1 - ((1 - t) * x_a[r] + t * x_b[r])
            assert np.abs(tile(png, r, j + 1).astype(int) - as_png_pixels(expected).astype(int)).max() <= 1


# ------------------------------------------------------------------------------------------ CLI
def test_cli_train_with_a_spec(tmp_path, smoke_plan, capsys):
    spec = tiny_spec(smoke_plan, "vae", steps=2)
    out = tmp_path / "run"
    rc = cli.main(["train", "--spec", json.dumps(spec), "--out", str(out), "--data-root", str(tmp_path / "data"),
                   "--device", "cpu", "--no-progress", "--checkpoint-every", "1"])
    assert rc == 0
    record = read_record(out)
    assert record["status"] == "ok" and record["steps_done"] == 2 and record["spec"] == spec
    assert (out / MODEL_FILE).is_file()
    assert "done" in capsys.readouterr().err


def figure_settings(smoke_cfg, **values) -> str:
    """The figures' settings as the workflow passes them (--settings JSON), with ``values`` changed."""
    return json.dumps({**im.figure_settings(smoke_cfg), **values})


def test_cli_report_image_figures_samples(tmp_path, tiny_runs, smoke_cfg):
    run_dir, _, _ = tiny_runs["gan"]
    out = tmp_path / "digits_gan_seed0_samples.png"
    rc = cli.main(["report", "image-figures", "--in", f"run={run_dir}", "--out", f"samples={out}",
                   "--settings", figure_settings(smoke_cfg, n_samples=20)])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    assert Image.open(out).size == grid_size(20, 10)


@pytest.mark.parametrize("model", ["ali", "vae"])
def test_cli_report_image_figures_inference(tmp_path, tiny_runs, smoke_cfg, model):
    run_dir, _, _ = tiny_runs[model]
    recon, interp = f"digits_{model}_seed0_reconstructions.png", f"digits_{model}_seed0_interpolations.png"
    settings = figure_settings(smoke_cfg, n_reconstructions=5, n_interpolations=2, interpolation_steps=3)
    rc = cli.main(["report", "image-figures", "--in", f"run={run_dir}", "--out", f"reconstructions={tmp_path / recon}",
                   f"interpolations={tmp_path / interp}", "--data-root", str(tmp_path / "data"), "--settings", settings])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted([interp, recon])
    png = read_png(tmp_path / recon)
    assert (png.shape[1], png.shape[0]) == grid_size(10, 10)
    held_out = image_data.load("digits", "test")[0]
    for i in range(5):  # the first tile of each pair is the held-out image itself
        assert np.abs(tile(png, 0, 2 * i).astype(int) - held_out[i].astype(int)).max() <= 1
    png = read_png(tmp_path / interp)
    assert (png.shape[1], png.shape[0]) == grid_size(2 * 5, 5)
    for r in range(2):  # rows run from held-out image 5 + r to 7 + r
        assert np.abs(tile(png, r, 0).astype(int) - held_out[5 + r].astype(int)).max() <= 1
        assert np.abs(tile(png, r, 4).astype(int) - held_out[7 + r].astype(int)).max() <= 1


def test_cli_report_image_figures_inference_on_a_gan_exits_2_saying_it_has_no_encoder(tmp_path, tiny_runs,
                                                                                        smoke_cfg, capsys):
    run_dir, _, _ = tiny_runs["gan"]
    rc = cli.main(["report", "image-figures", "--in", f"run={run_dir}", "--out", f"reconstructions={tmp_path / 'r.png'}",
                   f"interpolations={tmp_path / 'i.png'}", "--settings", figure_settings(smoke_cfg)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no encoder" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_cli_train_svhn_without_files_exits_2_naming_them(tmp_path, paper_plan, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    out = tmp_path / "run"
    rc = cli.main(["train", "--spec", json.dumps(paper_plan["svhn/ali/seed0"]), "--out", str(out),
                   "--data-root", str(empty), "--device", "cpu", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "extra_32x32.mat" in err and "missing" in err
    assert "ali download svhn" in err
    assert not (out / RECORD).exists() and not (out / MODEL_FILE).exists()
