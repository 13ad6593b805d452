"""The mixture experiment's run selection and evaluation against numbers worked out by hand.

- ``best_run``: most modes (the paper's count), then strict modes, then % high quality, then the lower
  reverse KL (a NaN KL, from no high-quality sample, ranks last), then the run directory; runs that are
  not ``ok`` never win.
- ``evaluate_run`` on a real run directory (trained one step through ``train_run``) whose GAN decoder is
  then set by hand to send z to one of four grid centres by the signs of z: (-4, -4) + 2 [z0 > 0] e_x
  + 2 [z1 > 0] e_y. Each hidden layer is Linear (no bias) -> BN -> ReLU; with BN's running statistics at
  (0, 1) and its scale at sqrt(1 + eps), a layer is an affine map followed by ReLU, so
  clamp(s z, 0, 1) = relu(s z) - relu(s z - 1) gives the step (s = 1e4; no drawn |z| is below 1/s).
  The expected metrics are then counts of sign quadrants of the evaluation's own z draws.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import conftest
import numpy as np
import pytest
import torch

from ali.config import load_config
from ali.experiments import mixture as mx
from ali.nets.layers import BN_EPS

SMOKE = load_config(conftest.SMOKE)
PLAN = mx.plan(SMOKE)


# ------------------------------------------------------------------------------------------ best_run
def m(run: str, modes: int, strict: int, hq: float, kl: float, status: str = "ok") -> dict:
    return {"run_dir": run, "modes": modes, "strict_modes": strict, "hq_pct": hq, "reverse_kl": kl, "status": status}


def test_best_run_ties_on_modes_broken_by_strict_modes():
    runs = [m("a", 20, 15, 99.0, 0.01), m("b", 20, 18, 50.0, 0.90), m("c", 19, 25, 100.0, 0.0)]
    assert mx.best_run(runs)["run_dir"] == "b"


def test_best_run_ties_on_modes_and_strict_broken_by_hq_then_kl():
    assert mx.best_run([m("a", 20, 18, 80.0, 0.01), m("b", 20, 18, 90.0, 0.50)])["run_dir"] == "b"
    assert mx.best_run([m("a", 20, 18, 90.0, 0.30), m("b", 20, 18, 90.0, 0.20)])["run_dir"] == "b"


def test_best_run_nan_kl_ranks_after_any_finite_kl_but_never_outweighs_modes():
    nan = float("nan")
    assert mx.best_run([m("a", 20, 0, 0.0, nan), m("b", 20, 0, 0.0, 5.0)])["run_dir"] == "b"
    assert mx.best_run([m("b", 20, 0, 0.0, 5.0), m("a", 20, 0, 0.0, nan)])["run_dir"] == "b"  # order-free
    assert mx.best_run([m("a", 21, 0, 0.0, nan), m("b", 20, 25, 100.0, 0.0)])["run_dir"] == "a"
    # two NaN KLs tie; the run directory decides, deterministically
    assert mx.best_run([m("z", 20, 3, 1.0, nan), m("y", 20, 3, 1.0, nan)])["run_dir"] == "y"


def test_best_run_ignores_runs_that_are_not_ok():
    runs = [m("a", 25, 25, 100.0, 0.0, status="diverged"), m("b", 25, 25, 100.0, 0.0, status="nonfinite_samples"),
            m("c", 3, 1, 1.0, 2.0)]
    assert mx.best_run(runs)["run_dir"] == "c"
    assert mx.best_run(runs[:2]) is None
    assert mx.best_run([]) is None


# -------------------------------------------------------------------------------------- evaluate_run
S = 1e4  # float32: t is within ~4e-3 of 0 or 1 for |z| < 5; no drawn |z| is below 1 / S
C0, D1, D2 = (-4.0, -4.0), (2.0, 0.0), (0.0, 2.0)  # quadrant (z0 > 0, z1 > 0) -> C0 + D1 [z0>0] + D2 [z1>0]


def _bn_affine(bn: torch.nn.BatchNorm1d, shift: torch.Tensor) -> None:
    """BN in eval mode as the identity plus ``shift``: stats (0, 1), scale sqrt(1 + eps)."""
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0)
    bn.weight.fill_(math.sqrt(1.0 + BN_EPS))
    bn.bias.copy_(shift)


@torch.no_grad()
def set_quadrant_decoder(decoder: torch.nn.Sequential) -> None:
    """decoder(z) = C0 + D1 clamp(s z0, 0, 1) + D2 clamp(s z1, 0, 1), through the MLP's own layers."""
    hidden, out = list(decoder)[:-1], list(decoder)[-1]
    assert len(hidden) >= 2, "needs two hidden layers for the clamp"
    for i, layer in enumerate(hidden):
        lin, bn = layer[0], layer[1]
        lin.weight.zero_()
        shift = torch.zeros(lin.out_features)
        if i == 0:  # units 0..3: s z0, s z0 - 1, s z1, s z1 - 1 (before ReLU)
            lin.weight[0, 0] = lin.weight[1, 0] = S
            lin.weight[2, 1] = lin.weight[3, 1] = S
            shift[1] = shift[3] = -1.0
        elif i == 1:  # t0 = relu(s z0) - relu(s z0 - 1), t1 likewise
            lin.weight[0, 0], lin.weight[0, 1] = 1.0, -1.0
            lin.weight[1, 2], lin.weight[1, 3] = 1.0, -1.0
        else:  # carry t0, t1
            lin.weight[0, 0] = lin.weight[1, 1] = 1.0
        _bn_affine(bn, shift)
    out.weight.zero_()
    out.weight[:, 0] = torch.tensor(D1)
    out.weight[:, 1] = torch.tensor(D2)
    out.bias.copy_(torch.tensor(C0))


def _component(z: torch.Tensor) -> np.ndarray:
    """The grid component each z lands on: centres are row-major over (-4, -2, 0, 2, 4)^2, k = 5 i + j."""
    i = (z[:, 0] > 0).long().numpy()  # x: -4 (i = 0) or -2 (i = 1)
    j = (z[:, 1] > 0).long().numpy()
    return 5 * i + j


@pytest.fixture(scope="module")
def quadrant_run(tmp_path_factory) -> Path:
    spec = copy.deepcopy(PLAN["fixed/gan/run0"])
    spec["nets"].update(gen_hidden=8, disc_hidden=8)
    spec["data"].update(n_train=200, n_heldout=100)
    spec["steps"] = 1
    run_dir = tmp_path_factory.mktemp("quadrant")
    mx.train_run(spec, run_dir, device="cpu", progress=False)
    state = torch.load(run_dir / mx.MODEL_FILE, map_location="cpu", weights_only=True)
    model = mx.build(spec)
    model.load_state_dict(state)
    set_quadrant_decoder(model.decoder)
    torch.save(model.state_dict(), run_dir / mx.MODEL_FILE)
    return run_dir


def test_the_hand_built_decoder_sends_z_to_its_quadrant_centre(quadrant_run):
    model, _ = mx.load_trained(quadrant_run)
    z = torch.tensor([[1.0, 1.0], [-1.0, 2.0], [0.5, -3.0], [-0.2, -0.1]])
    with torch.no_grad():
        x = model.decode(z)
    torch.testing.assert_close(x, torch.tensor([[-2.0, -2.0], [-4.0, -2.0], [-2.0, -4.0], [-4.0, -4.0]]),
                               atol=1e-2, rtol=0)


@pytest.mark.parametrize("n_samples,n_strict", [(3, 40), (500, 7)])
def test_evaluate_run_counts_what_the_configured_samples_say(quadrant_run, n_samples, n_strict):
    settings = {**mx.eval_settings(SMOKE), "n_samples": n_samples, "n_strict_samples": n_strict, "seed": 5}
    metrics = mx.evaluate_run(quadrant_run, settings)

    # the evaluation's own draws: seed, then n_samples, then n_strict_samples from N(0, I)
    torch.manual_seed(settings["seed"])
    z_paper, z_strict = torch.randn(n_samples, 2), torch.randn(n_strict, 2)
    assert float(torch.cat([z_paper, z_strict]).abs().min()) > 1 / S  # every sample sits on its centre
    paper = _component(z_paper)
    strict = np.bincount(_component(z_strict), minlength=25)
    p = strict[strict > 0] / n_strict

    assert metrics["status"] == "ok"
    assert metrics["modes"] == len(set(paper.tolist()))
    assert metrics["strict_modes"] == int((strict > 0).sum())
    assert metrics["hq_pct"] == 100.0  # every sample within 1e-2 of a centre, radius 3 x 0.05
    assert metrics["reverse_kl"] == pytest.approx(float((p * np.log(25 * p)).sum()), rel=1e-12)
    assert json.loads(json.dumps(metrics, default=float))["eval"]["n_samples"] == n_samples
    if n_samples == 3:
        assert metrics["modes"] <= 3  # 10,000 samples would have found all four
    else:
        assert metrics["modes"] == 4
