"""A script that starts loader workers at its unguarded top level gets one clear line, not a dead worker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainer.data.synthetic import generate

ROOT = Path(__file__).resolve().parents[3]
BODY = """\
import sys
from trainer.data import VideoClipDataset, read_annotations
from trainer.data.dataset import build_loader
def main():
    recs = read_annotations(sys.argv[1], num_classes=7)
    loader = build_loader(VideoClipDataset(recs, 32, train=False, num_segments=2), 4, shuffle=False, drop_last=False, workers=1)
    print("batches", sum(1 for _ in loader))
"""


@pytest.fixture(scope="module")
def test_list(tmp_path_factory):
    made = generate(tmp_path_factory.mktemp("world"), train_per_class=1, test_per_class=1, size=32, min_frames=4, max_frames=6)
    return made.test_list


def _run(script: Path, test_list: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(script), str(test_list)], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("tail, ok", [("main()\n", False),
                                      ("if True:\n    main()\n", False),
                                      ("if __name__ == '__main__':\n    main()\n", True)])
def test_loader_workers_from_a_script(tmp_path, test_list, tail, ok):
    script = tmp_path / "script.py"
    script.write_text(BODY + textwrap.dedent(tail))
    done = _run(script, test_list)
    if ok:
        assert done.returncode == 0 and "batches 2" in done.stdout, done.stderr
    else:
        line = BODY.count("\n") + textwrap.dedent(tail).count("\n")  # the line calling main()
        assert done.returncode != 0
        assert f"{script}:{line} starts data-loader workers from the top level of the script" in done.stderr
        assert 'if __name__ == "__main__":' in done.stderr and "exited unexpectedly" not in done.stderr
