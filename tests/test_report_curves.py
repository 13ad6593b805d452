"""Training curves from history.csv: what is drawn, and that missing or empty histories draw nothing."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image

from ali.train.progress import History
from ali.report.curves import (curves_figure, histories, image_curves, loss_columns, mixture_curves,
                               paired_runs_figure, read_history, semisup_curves)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_history(run_dir, losses, steps=5, evals=False):
    """A history.csv written by the package's own writer."""
    history = History(run_dir / "history.csv", [*losses, *(["modes", "hq_pct"] if evals else [])])
    for step in range(1, steps + 1):
        values = {name: 1.0 / step for name in losses}
        if evals and step % 2 == 0:
            values.update(modes=step, hq_pct=90.0)
        history.append(step * 10, step * 0.1, values)


def size(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


def test_missing_or_header_only_history_is_none(tmp_path):
    assert read_history(tmp_path) is None
    History(tmp_path / "history.csv", ["loss_d"])   # header only: the run has not logged a step yet
    assert read_history(tmp_path) is None


def test_histories_are_keyed_by_the_run_path(tmp_path):
    write_history(tmp_path / "mixture" / "random" / "ali" / "run0", ["loss_d", "loss_g"], evals=True)
    (tmp_path / "mixture" / "random" / "gan" / "run0").mkdir(parents=True)   # no history: left out
    found = histories(tmp_path, "mixture/*/*/run*")
    assert list(found) == [("random", "ali", "run0")]
    assert found[("random", "ali", "run0")]["modes"].notna().sum() == 2   # evaluations on every 2nd row


def test_loss_columns_skip_step_time_and_evaluations():
    frames = [pd.DataFrame(columns=["step", "wall_s", "loss_d", "loss_g", "modes", "hq_pct"]),
              pd.DataFrame(columns=["step", "wall_s", "loss"])]
    assert loss_columns(frames) == ["loss_d", "loss_g", "loss"]


def test_curves_figure_draws_a_png_with_a_panel_per_column(tmp_path):
    write_history(tmp_path / "a", ["loss_d", "loss_g"], evals=True)
    write_history(tmp_path / "b", ["loss"])
    one = curves_figure({"vae run0": ("vae", read_history(tmp_path / "b"))}, "t")   # 1 panel: loss
    five = curves_figure({"ali run0": ("ali", read_history(tmp_path / "a")),
                          "vae run0": ("vae", read_history(tmp_path / "b"))}, "t")   # modes, hq_pct and 3 losses
    assert one[:8] == PNG_MAGIC and five[:8] == PNG_MAGIC
    assert size(five)[0] > 2 * size(one)[0] and size(five)[1] > 1.5 * size(one)[1]   # 3 columns, 2 rows
    assert curves_figure({}, "t") is None


def test_mixture_image_and_semisup_curves_by_layout(tmp_path):
    write_history(tmp_path / "mixture" / "random" / "ali" / "run0", ["loss_d", "loss_g"], evals=True)
    write_history(tmp_path / "mixture" / "random" / "vae" / "run0", ["loss"])
    write_history(tmp_path / "mixture" / "fixed" / "gan" / "run3", ["loss_d", "loss_g"])
    write_history(tmp_path / "images" / "digits" / "vae" / "seed0", ["loss"])
    write_history(tmp_path / "semisup" / "digits" / "gan_fm" / "labels100" / "seed0", ["loss_d", "loss_g"])
    write_history(tmp_path / "semisup" / "digits" / "gan_fm" / "labels50" / "seed0", ["loss_d", "loss_g"])
    mixture = mixture_curves(tmp_path)
    assert list(mixture) == ["random: ALI against GAN", "random: baselines", "fixed: ALI against GAN",
                             "fixed: baselines"]   # the paper's protocol first
    assert mixture["fixed: baselines"] is None and mixture["random: baselines"][:8] == PNG_MAGIC
    assert list(image_curves(tmp_path)) == ["digits"]
    assert list(semisup_curves(tmp_path)) == ["digits, 50 labels", "digits, 100 labels"]   # by label count
    assert image_curves(tmp_path / "nothing") == {}


def test_paired_runs_figure_needs_random_protocol_runs():
    runs = pd.DataFrame({"protocol": ["random"] * 4 + ["fixed"], "protocol_kind": ["random"] * 4 + ["fixed"],
                         "model": ["ali", "gan", "ali", "gan", "ali"], "run": [0, 0, 1, 1, 0],
                         "modes": [20, 9, np.nan, 4, 25]})
    assert paired_runs_figure(runs)[:8] == PNG_MAGIC
    assert paired_runs_figure(runs[runs["protocol_kind"] == "fixed"]) is None
    assert paired_runs_figure(None) is None


def test_few_points_and_evaluations_get_markers_long_loss_lines_do_not():
    from ali.report.curves import FEW_POINTS, marker

    assert marker("loss_d", 1) == marker("loss_d", FEW_POINTS) == marker("modes", 500) == "o"
    assert marker("loss_d", FEW_POINTS + 1) is None
