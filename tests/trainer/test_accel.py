"""`data.decode` and `compile` through `trainer run`: refusals in one line, the batched decode path
through the real training loop with exact resume, and the compiler's failure as one line."""

from __future__ import annotations

import json

import pytest
import torch

from trainer import engine
from trainer.accel import StepFigures, batched_decode, compile_model
from trainer.cli import main
from trainer.config import resolve_config
from trainer.distributed import DistContext
from trainer.errors import ConfigError, InputError
from trainer.model import ClassTexts, ModelConfig, build_model
from trainer.protocol import start_run


def _cli(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def _args(clips, out, *extra):
    train, test = clips
    return ["run", "--train-list", str(train), "--test-list", str(test), "--text", "classnames", "--epochs", "1",
            "--batch", "2", "--frames", "4", "--workers", "0", "--device", "cpu", "--quiet", "--out", str(out), *extra]


def test_decode_gpu_without_cuda_is_one_line(clips, tmp_path, capsys):
    assert _cli(_args(clips, tmp_path / "r", "--decode", "gpu")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--decode gpu needs CUDA" in err[0] and "Traceback" not in err[0]


def test_decode_values_and_auto():
    with pytest.raises(ConfigError, match="got 'nvjpeg'"):
        resolve_config("default", sets=["data.decode=nvjpeg"])
    assert batched_decode("auto", torch.device("cpu")) is False
    assert batched_decode("cpu", torch.device("cuda")) is False
    with pytest.raises(InputError, match="needs CUDA"):
        batched_decode("gpu", torch.device("cpu"))


def test_step_figures_are_read_in_order_once_due():
    figures = StepFigures(interval=3)
    for step in range(1, 3):
        figures.add(step, 10 + step, torch.tensor([step * 1.5, 2.0], dtype=torch.float64), {"image": 0.1})
        assert not figures.due()
    figures.add(3, 13, torch.tensor([float("nan"), 2.0], dtype=torch.float64), {"image": 0.1})
    assert figures.due()
    read = figures.read()
    assert [(r[0], r[1], r[3]) for r in read] == [(1, 11, 2), (2, 12, 2), (3, 13, 2)]
    assert read[0][2] == 1.5 and read[2][2] != read[2][2]  # nan kept for the caller's check
    assert figures.read() == [] and not figures.due()


class StopAt:
    """A progress that interrupts the run at a given step (like Ctrl-C)."""

    def __init__(self, step: int) -> None:
        self.at, self.steps = step, 0

    def step(self, clips, loss, lrs):
        self.steps += 1
        if self.steps == self.at:
            raise KeyboardInterrupt

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_batched_decode_trains_and_resumes_exactly(clips, tmp_path, monkeypatch):
    """The batched path (on CPU tensors here) through the real loop: an interrupted, resumed run
    ends exactly like an uninterrupted one."""
    monkeypatch.setattr(engine, "batched_decode", lambda decode, device: True)
    train, test = clips
    config = resolve_config("default", options={
        "data": {"train_list": str(train), "test_list": str(test), "num_segments": 4, "workers": 0, "augment": "dfew",
                 "decode": "gpu"},
        "optim": {"epochs": 2, "batch": 2}, "text": {"source": "classnames"}, "deterministic": True,
        "device": "cpu", "ckpt_every_steps": 1})
    ctx = DistContext(device=torch.device("cpu"))
    stopped, straight = tmp_path / "stopped", tmp_path / "straight"
    with pytest.raises(KeyboardInterrupt):
        start_run(config, stopped, ctx=ctx, progress=StopAt(4))
    assert torch.load(stopped / "last.pt", weights_only=True)["step_in_epoch"] == 3
    start_run(config, stopped, resume=True, ctx=ctx)
    start_run(config, straight, ctx=ctx)
    history = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
               for run in (stopped, straight)]
    for records in history:
        for record in records:
            record.pop("train_clips_per_s")
    assert history[0] == history[1] and len(history[0]) == 2
    a = torch.load(stopped / "last.pt", weights_only=True)["model"]["state_dict"]
    b = torch.load(straight / "last.pt", weights_only=True)["model"]["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_compile_keeps_the_weight_names():
    model = build_model(ModelConfig(backbone="tiny", num_frames=4), ClassTexts.from_class_names(("a", "b")))
    keys = list(model.state_dict())
    compile_model(model)  # in place and lazy: compiles at the first call
    assert list(model.state_dict()) == keys


@pytest.mark.slow
def test_a_broken_compiler_is_one_line(clips, tmp_path, capsys, monkeypatch):
    inductor = pytest.importorskip("torch._inductor.config")
    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/g++",))
    torch._dynamo.reset()
    assert _cli(_args(clips, tmp_path / "r", "--compile")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --compile failed") and "run without --compile" in err[-1]
    assert not any("Traceback" in line for line in err)
    torch._dynamo.reset()
