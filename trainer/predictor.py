"""`trainer.Predictor`: per-class probabilities for clips, from any saved model (a run folder, a .pt,
an exported folder or an exported .onnx file), with the preprocessing the model was trained with.

It reads what the model records (frames per clip, image size; normalisation happens inside the
model and the ONNX graph) and does the rest itself: decoding (a folder of JPEG/PNG frames or a
video file), sampling the middle frame of each of T equal segments (the test rule of `trainer run`,
`trainer.data.sampling`), resizing, the optional face crop, and `test_views` averaging. A .onnx file
runs on onnxruntime on the CPU (`trainer.export.onnx.OnnxModel`), so a service needs no training code
beyond this package's data side.

A clip shorter than `min_frames` (default: half the frames the model samples) is refused with one
line: training pads short clips by repeating their last frame, but a clip that is mostly repeated
frames gives a prediction that looks confident and means little. Pass `min_frames=1` to pad anyway.

    predictor = trainer.Predictor("runs/x")
    predictor.predict("clip.mp4")            # {"happiness": 0.71, ...}
    predictor.predict(["a/", "b.mp4"])       # one dict per clip, batched
    predictor.predict_rows(["a/"], face_crop=True)  # + prediction and whether a face was found
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch

from trainer.config import parse_views
from trainer.data.annotations import ClipRecord
from trainer.data.dataset import VideoClipDataset
from trainer.data.decode import count_video_frames, is_video
from trainer.distributed import DistContext, pick_device
from trainer.errors import InputError, TrainerError
from trainer.model.sources import is_onnx, resolve_checkpoint
from trainer.scoring import eval_loader, evaluate

ClipArg = str | os.PathLike[str]


class Predictor:
    """A loaded model ready to score clips; see the module docstring."""

    def __init__(self, path: ClipArg, *, device: str = "auto", precision: str = "fp32", test_views: str = "1x1",
                 batch: int = 8, base_weights: str | None = None, min_frames: int | None = None) -> None:
        self.views = parse_views(test_views)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise TrainerError(f"batch must be an integer >= 1; got {batch!r}")
        self.source = resolve_checkpoint(path)
        self.batch, self.precision = batch, precision
        if is_onnx(self.source):
            from trainer.export.onnx import OnnxModel

            self.ctx = DistContext(device=torch.device("cpu"))
            self.model = OnnxModel(self.source)
            self.precision = "fp32"
            self.classes, self.num_frames = self.model.classes, self.model.num_segments
        else:
            from trainer.inference import load_for_inference

            self.ctx = DistContext(device=pick_device(device))
            self.model, _state, self.classes, self.num_frames = load_for_inference(path, self.ctx.device, base_weights)
        self.image_size = int(self.model.image_size)
        if min_frames is None:
            min_frames = max(1, self.num_frames // 2)
        if isinstance(min_frames, bool) or not isinstance(min_frames, int) or min_frames < 1:
            raise TrainerError(f"min_frames must be an integer >= 1; got {min_frames!r}")
        self.min_frames = min_frames

    def predict(self, clips: ClipArg | Sequence[ClipArg], face_crop: bool = False
                ) -> dict[str, float] | list[dict[str, float]]:
        """{class: probability} for one clip (a frame folder or a video file), or a list of them,
        in order, for a list of clips (scored in batches)."""
        if isinstance(clips, (str, os.PathLike)):
            return self.predict_rows([clips], face_crop)[0]["probabilities"]
        return [row["probabilities"] for row in self.predict_rows(list(clips), face_crop)]

    def predict_rows(self, clips: Sequence[ClipArg], face_crop: bool = False) -> list[dict[str, Any]]:
        """One row per clip: `clip`, `prediction`, `probabilities` (softmax of the logits averaged
        over the test views) and, with `face_crop`, `face_found` (False: no face in any sampled
        frame, the full frames were used)."""
        if not clips:
            raise TrainerError("give at least one clip (a folder of frames or a video file)")
        records = [ClipRecord(Path(c).expanduser(), None, 0, f"argument {i + 1}") for i, c in enumerate(clips)]
        dataset = VideoClipDataset(records, self.image_size, train=False, num_segments=self.num_frames,
                                   face_crop=face_crop, views=self.views,
                                   hint="Give folders of frames (JPEG/PNG) or video files that exist")
        self._check_lengths(dataset)
        _, logits = evaluate(self.model, eval_loader(dataset, self.batch, 0), self.ctx, self.precision)  # (N, C)
        probs = torch.softmax(logits, dim=1)  # (N, C)
        rows = []
        for i, (clip, row) in enumerate(zip(clips, probs)):
            out: dict[str, Any] = {"clip": str(clip), "prediction": self.classes[int(row.argmax())],
                                   "probabilities": {name: float(p) for name, p in zip(self.classes, row)}}
            if face_crop:
                out["face_found"] = bool(dataset.face_found.get(i, False))
            rows.append(out)
        return rows

    def _check_lengths(self, dataset: VideoClipDataset) -> None:
        """One InputError line for the first clip with fewer than `min_frames` frames."""
        for rec, count in zip(dataset.records, dataset.frame_counts):
            if is_video(rec.path) and rec.path.is_file():
                count = count_video_frames(rec.path)
            if count < self.min_frames:
                raise InputError(f"clip {rec.path} has {count} frame{'s' if count != 1 else ''}; the model samples "
                                 f"{self.num_frames} and takes clips of at least {self.min_frames} "
                                 "(Predictor(min_frames=1) pads a short clip by repeating its last frame, as training does)")
