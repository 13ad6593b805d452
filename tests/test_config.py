"""Config presets, the mixture plan, and ConfigError messages."""

from __future__ import annotations

import copy
import math

import pytest

from ali.config import PRESET_DIR, ConfigError, load_config, results_dir
from ali.experiments.mixture import data_from_config, plan, protocol_settings


@pytest.fixture(scope="module")
def _paper():
    return load_config(PRESET_DIR / "paper.yaml")


@pytest.fixture
def paper(_paper):
    return copy.deepcopy(_paper)


@pytest.fixture(scope="module")
def paper_plan(_paper):
    return plan(copy.deepcopy(_paper))


@pytest.fixture(scope="module")
def smoke():
    return load_config(PRESET_DIR / "smoke.yaml")


# --- presets ----------------------------------------------------------------------------------------
def test_smoke_is_merged_over_paper(smoke, paper):
    """smoke.yaml overrides budgets only; everything else (nets, ranges, data std) comes from paper.yaml."""
    assert smoke["preset"] == "smoke"
    assert smoke["mixture"]["nets"] == paper["mixture"]["nets"]
    assert smoke["mixture"]["data"]["n_train"] == 20000
    assert smoke["mixture"]["data"]["std"] == paper["mixture"]["data"]["std"] == 0.05
    assert smoke["mixture"]["train"]["epochs"] == 6
    assert smoke["mixture"]["train"]["batch_size"] == 100
    assert smoke["mixture"]["protocols"]["random"]["n_runs"] == 2
    assert smoke["mixture"]["protocols"]["random"]["lr"] == paper["mixture"]["protocols"]["random"]["lr"]
    assert smoke["mixture"]["protocols"]["fixed"]["adam"] == paper["mixture"]["protocols"]["fixed"]["adam"]
    assert smoke["mixture"]["baselines"]["models"] == ["inverse", "posthoc", "vae"]


def test_smoke_plan_uses_paper_nets(smoke, paper_plan):
    """The smoke plan builds the paper's architectures with a smaller budget."""
    specs = plan(smoke)
    assert len(specs) == 2 * (2 * 2 + 3) + 2 * 2  # random and fixed with baselines; pacgan's ALI and GAN alone
    s = specs["random/ali/run0"]
    assert s["nets"] == paper_plan["random/ali/run0"]["nets"]
    assert s["steps"] == 6 * (20000 // 100)


def test_results_dir(paper, smoke):
    """paper -> results/, any other preset -> results/<preset>/."""
    assert results_dir(paper) == "results"
    assert results_dir(smoke) == "results/smoke"


def test_missing_config_file_raises(tmp_path):
    """A missing preset file is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_data_spec_matches_reference(paper):
    """The paper preset's data: grid {-4..4}, std 0.05, 100,000 train / 10,000 held out."""
    d = data_from_config(paper)
    assert d.grid == (-4.0, -2.0, 0.0, 2.0, 4.0)
    assert (d.std, d.n_train, d.n_heldout) == (0.05, 100_000, 10_000)


# --- plan ----------------------------------------------------------------------------------------
def test_paper_plan_run_counts(paper_plan):
    """Per protocol (the paper's, the released code's, PacGAN's re-run): 10 ALI + 10 GAN runs and 3
    baselines (inverse, posthoc, vae)."""
    assert len(paper_plan) == 3 * (10 + 10 + 3)
    for protocol in ("random", "fixed", "pacgan"):
        for model in ("ali", "gan"):
            keys = [k for k in paper_plan if k.startswith(f"{protocol}/{model}/")]
            assert sorted(keys) == sorted(f"{protocol}/{model}/run{i}" for i in range(10))
        for model in ("inverse", "posthoc", "vae"):
            assert f"{protocol}/{model}/run0" in paper_plan
            assert paper_plan[f"{protocol}/{model}/run0"]["model"] == model


def test_paper_plan_steps(paper_plan):
    """200 epochs of 100,000 / 100 = 1,000 steps: 200,000 steps (baselines too); PacGAN's re-run: 400 epochs."""
    pacgan_runs = {k for k, s in paper_plan.items() if s["protocol"] == "pacgan" and s["model"] in ("ali", "gan")}
    assert len(pacgan_runs) == 20
    assert all(s["steps"] == (400_000 if k in pacgan_runs else 200_000) for k, s in paper_plan.items())
    assert paper_plan["random/ali/run0"]["batch_size"] == 100


def test_ali_and_gan_runs_are_paired(paper_plan):
    """ALI run i and GAN run i share seed, Adam settings, init std and training set (paired comparison)."""
    for protocol in ("random", "fixed", "pacgan"):
        for i in range(10):
            a, g = paper_plan[f"{protocol}/ali/run{i}"], paper_plan[f"{protocol}/gan/run{i}"]
            assert (a["seed"], a["adam"], a["init_std"], a["data"]) == (g["seed"], g["adam"], g["init_std"], g["data"])


def test_random_runs_differ_from_each_other(paper_plan):
    """Each random run gets its own draw and its own seed."""
    runs = [paper_plan[f"random/ali/run{i}"] for i in range(10)]
    assert len({r["seed"] for r in runs}) == 10
    assert len({r["adam"]["lr"] for r in runs}) == 10
    assert len({r["adam"]["beta1"] for r in runs}) == 10
    assert len({r["init_std"] for r in runs}) == 10


def test_random_draws_lie_in_configured_ranges(paper, paper_plan):
    """lr in [1e-5, 1e-3], beta1 in [0, 0.9], init std in [0.005, 0.1], beta2 fixed at 0.999."""
    p = paper["mixture"]["protocols"]["random"]
    lrs = []
    for i in range(10):
        s = paper_plan[f"random/ali/run{i}"]
        assert p["lr"]["low"] <= s["adam"]["lr"] <= p["lr"]["high"]
        assert p["beta1"]["low"] <= s["adam"]["beta1"] <= p["beta1"]["high"]
        assert p["init_std"]["low"] <= s["init_std"] <= p["init_std"]["high"]
        assert s["adam"]["beta2"] == 0.999 and s["adam"]["convention"] == "torch"
        lrs.append(s["adam"]["lr"])
    # log-uniform over two decades: the draws should not all sit in one decade
    assert max(math.log10(v) for v in lrs) - min(math.log10(v) for v in lrs) > 0.5


def test_random_draws_are_reproducible_and_seeded(paper):
    """Same protocol seed -> same draws; another seed -> other draws."""
    a = protocol_settings(paper, "random")
    b = protocol_settings(copy.deepcopy(paper), "random")
    assert a == b
    paper["mixture"]["protocols"]["random"]["seed"] = 2018
    c = protocol_settings(paper, "random")
    assert [r["adam"]["lr"] for r in c] != [r["adam"]["lr"] for r in a]


def test_fixed_protocol_settings(paper_plan):
    """Fixed protocol: seeds 1..10, the released code's Adam (Blocks convention), init std 0.02."""
    runs = [paper_plan[f"fixed/ali/run{i}"] for i in range(10)]
    assert [r["seed"] for r in runs] == list(range(1, 11))
    for r in runs:
        assert r["adam"] == {"lr": 1e-4, "beta1": 0.8, "beta2": 0.001, "convention": "blocks"}
        assert r["init_std"] == 0.02


def test_plan_is_deterministic(paper):
    """plan() of the same config twice gives identical specs."""
    assert plan(paper) == plan(copy.deepcopy(paper))


def test_vae_baseline_records_likelihood_std(paper_plan):
    """The VAE's likelihood std (our choice) is in its spec; the frozen-decoder baselines name their source."""
    assert paper_plan["random/vae/run0"]["vae_likelihood_std"] == 0.05
    assert "source" in paper_plan["fixed/inverse/run0"] and "source" in paper_plan["fixed/posthoc/run0"]
    assert "source" not in paper_plan["fixed/vae/run0"]


# --- errors ---------------------------------------------------------------------------------------
def _set(path: str, value):
    def edit(cfg):
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        node[last] = value
    return edit


def _del(path: str):
    def edit(cfg):
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        del node[last]
    return edit


def _set_all(values: dict):
    def edit(cfg):
        for path, value in values.items():
            _set(path, value)(cfg)
    return edit


BAD = [
    ("negative epochs", _set("mixture.train.epochs", -5), "mixture.train.epochs"),
    ("zero epochs", _set("mixture.train.epochs", 0), "mixture.train.epochs"),
    ("string fixed lr", _set("mixture.protocols.fixed.adam.lr", "1e-4"), "mixture.protocols.fixed.adam.lr"),
    ("string random lr", _set("mixture.protocols.random.lr.low", "1e-5"), "mixture.protocols.random.lr.low"),
    ("unknown protocol kind", _set("mixture.protocols.random.kind", "grid"), "mixture.protocols.random.kind"),
    ("batch > n_train", _set("mixture.train.batch_size", 200_000), "mixture.train.batch_size"),
    ("lr low > high", _set("mixture.protocols.random.lr", {"low": 1e-3, "high": 1e-5}), "mixture.protocols.random.lr"),
    ("init_std low > high", _set("mixture.protocols.random.init_std", {"low": 0.1, "high": 0.01}),
     "mixture.protocols.random.init_std"),
    ("unknown baseline", _set("mixture.baselines.models", ["inverse", "wae"]), "mixture.baselines.models"),
    ("bad adam convention", _set("mixture.protocols.fixed.adam.convention", "theano"),
     "mixture.protocols.fixed.adam.convention"),
    ("bad baseline convention", _set("mixture.baselines.adam.convention", "Blocks"), "mixture.baselines.adam.convention"),
    ("beta1 > 1", _set("mixture.protocols.fixed.adam.beta1", 1.5), "mixture.protocols.fixed.adam.beta1"),
    # Torch convention with beta2 = 1.0 passes the [0, 1] range check but Adam needs beta < 1.
    ("torch beta2 = 1", _set_all({"mixture.protocols.fixed.adam.convention": "torch",
                                  "mixture.protocols.fixed.adam.beta2": 1.0}), "mixture.protocols.fixed.adam"),
    ("negative std", _set("mixture.data.std", -0.05), "mixture.data.std"),
    ("bool n_runs", _set("mixture.protocols.fixed.n_runs", True), "mixture.protocols.fixed.n_runs"),
    ("unknown update", _set("mixture.train.update", "async"), "mixture.train.update"),
    ("missing seed", _del("mixture.data.seed"), "mixture.data.seed"),
    ("nan init std", _set("mixture.protocols.fixed.init_std", float("nan")), "mixture.protocols.fixed.init_std"),
]


@pytest.mark.parametrize("name, edit, key", BAD, ids=[b[0] for b in BAD])
def test_bad_values_raise_config_error_naming_the_key(paper, name, edit, key):
    """Each bad value raises ConfigError (a ValueError) whose message names the dotted key."""
    edit(paper)
    with pytest.raises(ConfigError) as info:
        plan(paper)
    assert f"'{key}'" in str(info.value), str(info.value)
    assert isinstance(info.value, ValueError)


def test_config_error_does_not_fire_on_the_presets(paper, smoke):
    """Guard for the test above: the unedited presets plan without error."""
    assert plan(paper) and plan(smoke)


def test_blocks_beta_zero_is_a_config_error(paper):
    """Blocks beta1 = 0 is PyTorch beta1 = 1, which Adam cannot use: plan() should say so."""
    paper["mixture"]["protocols"]["fixed"]["adam"]["beta1"] = 0.0
    with pytest.raises(ConfigError, match="mixture.protocols.fixed.adam"):
        plan(paper)
