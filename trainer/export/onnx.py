"""`trainer export --format onnx`: the whole model, frames in [0, 1] `(B, T, 3, H, W)` -> logits
`(B, n_cls)`, as one ONNX graph made by PyTorch's torch.export-based exporter (`dynamo=True`), with
a dynamic batch dimension. The class text features do not depend on the input, so they are computed
once and stored in the graph as constants (`FrozenTexts`); the image encoder, the temporal model
and the cosine logits are in the graph.

The file carries what a runner needs in its metadata (`dferclip.classes`, `dferclip.preprocessing`,
`dferclip.source`): `OnnxModel` reads them, and `trainer predict` / `trainer.Predictor` run the file
with onnxruntime on the CPU. Exporting verifies the written graph at once: onnxruntime's logits
against PyTorch's on random clips at two batch sizes other than the traced one; the largest
absolute difference is returned (and a difference over `ATOL` is an ExportError, the file is not
written). onnx, onnxscript and onnxruntime come with the `onnx` extra.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.errors import CheckpointError, ExportError
from trainer.model.checkpoint import frames_per_clip, model_from_payload
from trainer.model.dferclip import DFERCLIP
from trainer.model.sources import read_source

EXTRA_HINT = "pip install 'dferclip-toolkit[onnx]'"
ATOL = 1e-2  # logits are cosines / 0.01, so they span +-100: 1e-2 is 1e-4 of a cosine
META_KEYS = ("dferclip.classes", "dferclip.preprocessing")


def require(module: str, what: str):
    """Import an optional module of the `onnx` extra, or one ExportError line naming the extra."""
    try:
        return __import__(module)
    except ImportError:
        raise ExportError(f"{what} needs {module}, which is not installed; install the onnx extra: {EXTRA_HINT}") from None


class FrozenTexts(nn.Module):
    """`model` with its class text features computed once and kept as buffers: frames -> logits."""

    def __init__(self, model: DFERCLIP) -> None:
        super().__init__()
        if model.config.fuses_clip_texts:
            raise ExportError("this model fuses clip texts (--clip-text-mode fuse): it reads frames and each clip's "
                              "text, and an ONNX export takes frames only; export a model trained with "
                              "--clip-text-mode align, whose clip texts act in training only")
        self.model = model
        text = negative = None
        if model.config.uses_text:
            with torch.no_grad():
                text = model.text_features().detach().clone()  # (n_cls, E)
                if model.negative_learner is not None:
                    negative = model.negative_text_features().detach().clone()  # (n_cls, E)
        self.register_buffer("text", text)
        self.register_buffer("negative", negative)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        video = self.model.video_features(frames)  # (B, T, 3, H, W) -> (B, E)
        if self.model.head is not None:
            return self.model.head(video).float()  # (B, n_cls)
        return self.model.class_logits(video, (self.text, self.negative))  # (B, n_cls)


def export_onnx(source: str | Path, out: str | Path, *, base_weights: str | None = None) -> dict[str, Any]:
    """Write the model of `source` to `out` (.onnx) and verify it with onnxruntime; returns
    {"files", "export_seconds", "verify_seconds", "max_abs_diff", "batches"}."""
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"--out for --format onnx is a file ending in .onnx; got {str(out)!r}")
    for module in ("onnx", "onnxscript", "onnxruntime"):
        require(module, "--format onnx")
    obj, resolved = read_source(source)
    model = model_from_payload(obj["model"], base_weights=base_weights, what=str(resolved)).eval()
    frames = frames_per_clip(obj, model)
    wrapper = FrozenTexts(model).eval()
    meta = {"dferclip.classes": json.dumps(list(model.texts.classes)),
            "dferclip.preprocessing": json.dumps({**model.preprocessing(), "num_segments": frames}),
            "dferclip.source": str(resolved)}
    if out.is_dir():
        raise ExportError(f"--out {out} is a folder; give a file ending in .onnx")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        start = time.perf_counter()
        _export_graph(wrapper, frames, model.image_size, tmp, meta)
        exported = time.perf_counter() - start
        start = time.perf_counter()
        diff, batches = verify(wrapper, tmp, frames, model.image_size)
        verified = time.perf_counter() - start
        os.chmod(tmp, 0o644)  # mkstemp made it private; an export is meant to be shared
        os.replace(tmp, out)
    except OSError as exc:  # a full disk while saving, ...: nothing half-written is left
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return {"format": "onnx", "files": [str(out)], "source": str(resolved), "export_seconds": exported,
            "verify_seconds": verified, "max_abs_diff": diff, "batches": batches,
            "size_bytes": out.stat().st_size}


def _export_graph(wrapper: nn.Module, frames: int, size: int, path: Path, meta: dict[str, str]) -> None:
    """torch.onnx.export (dynamo) with a dynamic batch, then the metadata added to the file."""
    import onnx

    example = torch.rand(2, frames, 3, size, size, generator=torch.Generator().manual_seed(0))  # (2, T, 3, S, S)
    batch = torch.export.Dim("batch", min=1, max=4096)
    chatter = io.StringIO()  # the exporter reports its steps on stdout; library code does not print
    optimizer_log = logging.getLogger("onnxscript")  # warns about every constant it does not fold
    level = optimizer_log.level
    optimizer_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(chatter), torch.no_grad():
            program = torch.onnx.export(wrapper, (example,), dynamo=True, input_names=["frames"],
                                        output_names=["logits"], dynamic_shapes={"frames": {0: batch}},
                                        verbose=False)
            program.save(str(path), external_data=False)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds; one line names the first
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"the ONNX exporter failed: {type(exc).__name__}: {first}") from exc
    finally:
        optimizer_log.setLevel(level)
    graph = onnx.load(str(path))
    for key, value in meta.items():
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(path))


def verify(wrapper: nn.Module, path: Path, frames: int, size: int) -> tuple[float, list[int]]:
    """The largest |onnxruntime - PyTorch| logit difference over random clips at batch sizes 1 and 3;
    an ExportError when it is over ATOL."""
    runner = OnnxModel(path)
    gen = torch.Generator().manual_seed(1)
    worst, batches = 0.0, [1, 3]
    for b in batches:
        x = torch.rand(b, frames, 3, size, size, generator=gen)  # (b, T, 3, S, S) in [0, 1]
        with torch.no_grad():
            expected = wrapper(x)  # (b, C)
        got = runner(x)  # (b, C)
        if got.shape != expected.shape:
            raise ExportError(f"the ONNX graph gives logits of shape {tuple(got.shape)} for batch {b}; PyTorch gives {tuple(expected.shape)}")
        worst = max(worst, float((got - expected).abs().max()))
    if worst > ATOL:
        raise ExportError(f"the ONNX graph's logits differ from PyTorch's by up to {worst:.3g} (allowed {ATOL}); not written")
    return worst, batches


class OnnxModel(nn.Module):
    """An exported .onnx file run by onnxruntime on the CPU, called like the model: frames in
    [0, 1] `(B, T, 3, H, W)` -> logits `(B, n_cls)`; `classes`, `image_size` and `num_segments` come
    from the file's metadata."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        ort = require("onnxruntime", "running an .onnx model")
        path = Path(path)
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own kinds for a bad file
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{path} cannot be opened by onnxruntime: {first}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if not all(key in meta for key in META_KEYS):
            raise CheckpointError(f"{path} has no dferclip metadata; it was not written by `trainer export --format onnx`")
        self.classes = tuple(json.loads(meta["dferclip.classes"]))
        self.preprocessing = json.loads(meta["dferclip.preprocessing"])
        self.image_size = int(self.preprocessing["image_size"])
        self.num_segments = int(self.preprocessing.get("num_segments") or self.preprocessing["num_frames"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.detach().to("cpu", torch.float32).contiguous().numpy()  # (B, T, 3, H, W)
        (logits,) = self.session.run(None, {self.input_name: x})
        return torch.from_numpy(logits)  # (B, n_cls)
