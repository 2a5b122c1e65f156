"""report.html: written at the end of every run and protocol run, self-contained (no scripts, no
external styles or images), with every figure and table; rendered by a real headless Chromium when
one is installed (skipped cleanly otherwise)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from cli_runner import trainer_cli as cli
from PIL import Image
from test_switches import run_args

from trainer.cli import main
from trainer.report_html import protocol_report, write_report


@pytest.fixture(scope="module")
def protocol(clips, tmp_path_factory):
    """Two seeds of a 1-epoch run from list files: a protocol folder with two sub-runs."""
    out = tmp_path_factory.mktemp("runs") / "two-seeds"
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in run_args(clips, out, "--seeds", "1", "2")])
    assert info.value.code == 0
    return out


def assert_self_contained(page: str) -> None:
    assert "<script" not in page.lower() and "<link" not in page.lower()
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(s.startswith("data:image/png;base64,") or s.endswith("report.html") for s in sources), sources
    assert "http://" not in page and "https://" not in page and "url(" not in page


def test_every_run_and_the_protocol_get_a_self_contained_report(protocol):
    sub = protocol / "fold1_seed1"
    page = (sub / "report.html").read_text()
    summary = json.loads((sub / "summary.json").read_text())
    assert_self_contained(page)
    assert f"{summary['uar']:.2f}" in page and f"{summary['war']:.2f}" in page and "last epoch" in page
    assert page.count('src="data:image/png;base64,') == 2  # confusion (counts + normalised) and curves
    for part in ("Per-class recall", "Row-normalised", "Descriptor texts", "crow&#x27;s feet", "Resolved config",
                 "Provenance", summary["text"]["content_hash"], "best.pt", "&quot;num_segments&quot;: 4", "torch"):
        assert part in page, part
    assert summary["versions"]["torch"] in page  # recorded by the run, not guessed afterwards
    top = (protocol / "report.html").read_text()
    assert_self_contained(top)
    assert "fold1_seed1/report.html" in top and "fold1_seed2/report.html" in top
    assert "mean ± std" in top.lower() or "Mean ± std" in top
    assert "no paper number" in top  # list files: no paper figure to compare with


def test_a_run_from_list_files_shows_no_fold(protocol, capsys):
    # issue #20.12: "fold 1" was shown for runs from list files, which have no folds
    rows = json.loads((protocol / "protocol.json").read_text())["runs"]
    assert [r["fold"] for r in rows] == [None, None]
    assert (protocol / "protocol.csv").read_text().splitlines()[1].startswith(",1,")
    code, out, _ = cli(capsys, "run", "--resume", "--out", protocol, "--quiet")  # both finished: the table only
    assert code == 0 and not re.search(r"┃\s*fold\s*┃", out) and re.search(r"┃\s*seed\s*┃", out), out


def test_protocol_report_sets_the_paper_numbers_beside_the_mean(tmp_path):
    (tmp_path / "protocol.json").write_text(json.dumps({"runs": [
        {"fold": f, "seed": s, "uar": 50.0 + f, "war": 60.0 + s} for f in (1, 2) for s in (1, 2)]}))
    (tmp_path / "config.json").write_text(json.dumps({"data": {"dataset": "dfew"}}))
    page = protocol_report(tmp_path)
    assert "59.61" in page and "71.25" in page and "51.50 ± 0.58" in page and "61.50 ± 0.58" in page
    assert "<td>51.00 / 61.00</td>" in page and "<td>52.00 / 62.00</td>" in page


def test_report_command_and_its_bad_input(protocol, capsys, tmp_path):
    out = tmp_path / "page.html"
    code, stdout, _ = cli(capsys, "report", protocol / "fold1_seed2", "--out", out)
    assert code == 0 and "wrote" in stdout and out.read_text().startswith("<!DOCTYPE html>")
    code, _, err = cli(capsys, "report", tmp_path)
    assert code == 1 and err.count("\n") == 1 and "no summary.json or protocol.json" in err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium_without_console_errors(protocol, tmp_path):
    page = write_report(protocol / "fold1_seed1", tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--window-size=1280,2400"]
    done = subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # the page has no script; any console message is a load or parse error
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2400, 1280) and (pixels.min(axis=-1) < 100).mean() > 0.01  # text and figures drawn
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert "Per-class recall" in dom.stdout and dom.stdout.count("<img") == 2
