"""Using a trained model: `trainer eval` (metrics on a clip list) and `trainer predict` (per-class
probabilities for clips). Both read any native checkpoint: a run's best.pt / last.pt, a model
saved by `save_model`, or an authors' checkpoint converted with `trainer import-official`; a PEFT
delta checkpoint is built over its base weights (`base_weights` says where they are, if they moved).
Both take the test views of `trainer run` (`test_views` "CLIPSxCROPS", parsed by
`trainer.config.parse_views`, sampled by the dataset, logits averaged by `trainer.scoring.evaluate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from trainer.config import parse_views
from trainer.data.annotations import ClipRecord, read_annotations
from trainer.data.dataset import VideoClipDataset
from trainer.distributed import DistContext, pick_device
from trainer.errors import CheckpointError, TrainerError
from trainer.model.checkpoint import model_from_payload, read_native
from trainer.scoring import eval_loader, evaluate, split_metrics


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or a run folder's best.pt (else last.pt). The one owner of this
    rule (trainer eval/predict, promptkit compare --run and interpret use it); a CheckpointError
    naming what is needed otherwise: a path that does not exist, a protocol folder (one sub-run is
    needed) or a run folder without a checkpoint."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if not p.exists():
        raise CheckpointError(f"{p} does not exist; give a trainer run folder or a checkpoint file (.pt)")
    if not p.is_dir():
        raise CheckpointError(f"{p} is neither a checkpoint file nor a run folder")
    for name in ("best.pt", "last.pt"):
        if (p / name).is_file():
            return p / name
    subs = sorted(q.name for q in p.glob("fold*_seed*") if q.is_dir())
    if subs:
        raise CheckpointError(f"{p} holds a protocol run ({', '.join(subs[:3])}{', ...' if len(subs) > 3 else ''}); "
                              f"give one sub-run folder, e.g. {p / subs[0]}")
    raise CheckpointError(f"run folder {p} has no checkpoint (no best.pt or last.pt); finish training it with "
                          f"`trainer run --out {p}`, or give a run folder or a checkpoint file (.pt) that has one")


def load_for_inference(path: str | Path, device: torch.device, base_weights: str | None = None,
                       base_option: str = "--base-weights") -> tuple[Any, dict[str, Any], tuple[str, ...], int]:
    """(model in eval mode, the checkpoint dict, class names, frames per clip); `path` is a
    checkpoint file or a run folder (its best.pt, else last.pt); `base_weights` overrides where a
    delta checkpoint's base weights are (set by the caller's option `base_option`)."""
    file = resolve_checkpoint(path)
    state = read_native(file)
    model = model_from_payload(state["model"], base_weights=base_weights, what=str(file),
                               base_option=base_option).to(device).eval()
    classes = tuple(state.get("classes") or model.texts.classes)
    frames = int(state.get("preprocessing", {}).get("num_segments") or model.config.num_frames)
    return model, state, classes, frames


def recorded_test_list(state: dict[str, Any], file: Path) -> tuple[Path, str | None]:
    """(test list, data root) that the run which wrote this checkpoint was evaluated on; a
    CheckpointError saying to pass --test-list when the checkpoint records none or the list is not
    on this machine."""
    from trainer.config import config_from_dict
    from trainer.inputs import clip_lists

    raw = state.get("run_config")
    if not isinstance(raw, dict):
        raise CheckpointError(f"{file} records no run config (an imported or older checkpoint); pass --test-list")
    config = config_from_dict(raw)
    _, test = clip_lists(config, write_synthetic=False)
    if not test.is_file():
        raise CheckpointError(f"the test list {test} that {file} was trained with is not on this machine; "
                              "pass --test-list (and --data-root if the clips moved)")
    return test, config.data.data_root


def evaluate_checkpoint(path: str | Path, test_list: str | Path | None = None, *, data_root: str | Path | None = None,
                        batch: int = 16, workers: int = 2, device: str = "auto",
                        precision: str = "fp32", test_views: str = "1x1",
                        base_weights: str | None = None, on_batch=None) -> dict[str, Any]:
    """UAR / WAR (percent), per-class recall and confusion matrix of a checkpoint on a clip list,
    logits averaged over `test_views` (CLIPSxCROPS, as `trainer run --test-views`). Without
    `test_list`, the test list the checkpoint's run recorded (with its data root unless given).
    `on_batch(done, total)` reports progress."""
    views = parse_views(test_views)
    if batch < 1:
        raise TrainerError(f"--batch must be >= 1; got {batch}")
    ctx = DistContext(device=pick_device(device))
    model, state, classes, frames = load_for_inference(path, ctx.device, base_weights)
    if test_list is None:
        test_list, recorded_root = recorded_test_list(state, resolve_checkpoint(path))
        data_root = data_root if data_root is not None else recorded_root
    records = read_annotations(test_list, data_root, num_classes=len(classes), classes=classes)
    dataset = VideoClipDataset(records, model.image_size, train=False, num_segments=frames, views=views)
    _, logits = evaluate(model, eval_loader(dataset, batch, workers), ctx, precision, on_batch)
    result = split_metrics(logits, [r.label for r in records], len(classes))
    result["per_class_recall"] = dict(zip(classes, result["per_class_recall"]))
    result.update(classes=list(classes), n_clips=len(records), checkpoint=str(resolve_checkpoint(path)),
                  test_list=str(test_list), test_views=f"{views[0]}x{views[1]}",
                  mismatches=dataset.mismatch_summary())
    return result


def predict_clips(path: str | Path, clips: Sequence[str | Path], *, face_crop: bool = False,
                  device: str = "auto", precision: str = "fp32", batch: int = 8, test_views: str = "1x1",
                  base_weights: str | None = None) -> list[dict[str, Any]]:
    """Per-class probabilities for each clip (a frame folder or a video file), in the order given;
    the softmax of the logits averaged over `test_views`."""
    views = parse_views(test_views)
    if not clips:
        raise TrainerError("give at least one clip (a folder of frames or a video file)")
    ctx = DistContext(device=pick_device(device))
    model, _state, classes, frames = load_for_inference(path, ctx.device, base_weights)
    records = [ClipRecord(Path(c).expanduser(), None, 0, f"argument {i + 1}") for i, c in enumerate(clips)]
    dataset = VideoClipDataset(records, model.image_size, train=False, num_segments=frames, face_crop=face_crop,
                               hint="Give folders of frames (JPEG/PNG) or video files that exist", views=views)
    _, logits = evaluate(model, eval_loader(dataset, batch, 0), ctx, precision)
    probs = torch.softmax(logits, dim=1)  # (N, C)
    out = []
    for clip, row in zip(clips, probs):
        values = {name: float(p) for name, p in zip(classes, row)}
        out.append({"clip": str(clip), "prediction": classes[int(row.argmax())], "probabilities": values})
    return out
