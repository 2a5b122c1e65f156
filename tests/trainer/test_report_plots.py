"""The run plots (issue #20.12): UAR stays visible when it equals WAR, epoch ticks are whole epochs,
the confusion figure shows the row-normalised matrix beside the counts, and a run from list files
(which have no folds) is not shown as "fold 1"."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb

from trainer.report import confusion_figure, curves_figure, protocol_rows, row_normalised, write_protocol_csv

HISTORY = [{"epoch": e, "train_loss": 2.0 / e, "test": {"uar": 30.0 + 5 * e, "war": 30.0 + 5 * e}} for e in (1, 2, 3)]


def test_uar_is_drawn_visibly_on_top_of_an_equal_war():
    fig = curves_figure(HISTORY)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].astype(float) / 255  # (H, W, 3)
    ax = fig.axes[1]
    uar = next(line for line in ax.lines if line.get_label() == "test UAR")
    war = next(line for line in ax.lines if line.get_label() == "test WAR")
    assert (uar.get_linestyle(), uar.get_marker()) != (war.get_linestyle(), war.get_marker())
    for rec in HISTORY:  # the pixel at each data point has UAR's colour, not WAR's drawn over it
        x, y = ax.transData.transform((rec["epoch"], rec["test"]["uar"]))
        pixel = image[int(round(image.shape[0] - y)), int(round(x))]
        assert np.abs(pixel - to_rgb(uar.get_color())).sum() < 0.15, pixel


@pytest.mark.parametrize("epochs", [1, 2, 3, 7, 30])
def test_epoch_ticks_are_whole_epochs(epochs):
    fig = curves_figure([{**HISTORY[0], "epoch": e} for e in range(1, epochs + 1)])
    FigureCanvasAgg(fig).draw()
    for ax in fig.axes:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_confusion_figure_has_counts_beside_the_row_normalised_matrix():
    matrix = [[3, 1, 0], [0, 0, 0], [2, 2, 4]]
    assert row_normalised(matrix) == [[0.75, 0.25, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]]
    fig = confusion_figure(matrix, ["a", "b", "c"])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "counts" and titles[1].startswith("row-normalised")
    assert [t.get_text() for t in fig.axes[0].texts][:3] == ["3", "1", "0"]
    assert [t.get_text() for t in fig.axes[1].texts][:3] == ["75", "25", "0"]


def test_a_run_without_folds_has_no_fold_in_the_protocol_files(tmp_path):
    results = [{"fold": None, "seed": s, "uar": 40.0 + s, "war": 50.0} for s in (1, 2)]
    rows, agg = protocol_rows(results)
    assert [r["fold"] for r in rows] == [None, None] and agg["uar"]["mean"] == 41.5
    lines = write_protocol_csv(tmp_path / "p.csv", results).read_text().splitlines()
    assert lines[1].startswith(",1,") and lines[2].startswith(",2,")
