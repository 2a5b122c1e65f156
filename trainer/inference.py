"""Using a trained model: `trainer eval` (metrics on a clip list) and `trainer predict` (per-class
probabilities for clips). Both read any native checkpoint: a run's best.pt / last.pt, a model
saved by `save_model`, an authors' checkpoint converted with `trainer import-official`, or a folder
written by `trainer export --format hf` (`trainer.model.sources`; predict also runs an exported
.onnx file, through `trainer.Predictor`); a PEFT
delta checkpoint is built over its base weights (`base_weights` says where they are, if they moved).
Both take the test views of `trainer run` (`test_views` "CLIPSxCROPS", parsed by
`trainer.config.parse_views`, sampled by the dataset, logits averaged by `trainer.scoring.evaluate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from trainer.config import parse_views
from trainer.data.annotations import read_annotations
from trainer.data.dataset import VideoClipDataset
from trainer.distributed import DistContext, pick_device
from trainer.errors import CheckpointError, TrainerError
from trainer.model.checkpoint import frames_per_clip, model_from_payload
from trainer.model.sources import read_source, resolve_checkpoint
from trainer.scoring import eval_loader, evaluate, split_metrics


def load_for_inference(path: str | Path, device: torch.device, base_weights: str | None = None,
                       base_option: str = "--base-weights") -> tuple[Any, dict[str, Any], tuple[str, ...], int]:
    """(model in eval mode, the checkpoint dict, class names, frames per clip); `path` is a
    checkpoint file, a run folder (its best.pt, else last.pt) or an exported folder
    (`trainer.model.sources`); `base_weights` overrides where a delta checkpoint's base weights are
    (set by the caller's option `base_option`)."""
    state, file = read_source(path)
    model = model_from_payload(state["model"], base_weights=base_weights, what=str(file),
                               base_option=base_option).to(device).eval()
    classes = tuple(state.get("classes") or model.texts.classes)
    return model, state, classes, frames_per_clip(state, model)


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
                        base_weights: str | None = None, on_batch=None, clip_texts: str | None = None,
                        store: str | None = None) -> dict[str, Any]:
    """UAR / WAR (percent), per-class recall and confusion matrix of a checkpoint on a clip list,
    logits averaged over `test_views` (CLIPSxCROPS, as `trainer run --test-views`). Without
    `test_list`, the test list the checkpoint's run recorded (with its data root unless given).
    `on_batch(done, total)` reports progress. A model that fuses clip texts reads the test clips'
    texts from the clip-text set `clip_texts` (default: its own) in the user store `store`."""
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
    texts = test_clip_texts(model, state, records, Path(test_list), data_root, clip_texts, store, ctx.device)
    _, logits = evaluate(model, eval_loader(dataset, batch, workers), ctx, precision, on_batch, texts)
    result = split_metrics(logits, [r.label for r in records], len(classes))
    result["per_class_recall"] = dict(zip(classes, result["per_class_recall"]))
    result.update(classes=list(classes), n_clips=len(records), checkpoint=str(resolve_checkpoint(path)),
                  test_list=str(test_list), test_views=f"{views[0]}x{views[1]}",
                  mismatches=dataset.mismatch_summary())
    return result


def test_clip_texts(model, state: dict[str, Any], records, test_list: Path, data_root, ref: str | None,
                    store: str | None, device: torch.device):
    """The test clips' text features for a model that fuses clip texts (None for any other); a
    CheckpointError for `ref` given to a model that takes none."""
    from trainer.cliptexts import encode_split, load_clip_text_set, texts_for

    cfg = model.config
    if not cfg.fuses_clip_texts:
        if ref is not None:
            how = "was trained without clip texts" if cfg.clip_texts is None else "uses clip texts in training only (align)"
            raise CheckpointError(f"--clip-texts {ref}: this checkpoint {how}, so evaluating it reads no clip texts; "
                                  "leave --clip-texts out")
        return None
    cts = load_clip_text_set(ref or cfg.clip_texts, store)
    texts = texts_for(cts, records, test_list, data_root, f"the test list {test_list.name}")
    features, _ = encode_split(model, texts, device)
    return features


def predict_clips(path: str | Path, clips: Sequence[str | Path], *, face_crop: bool = False,
                  device: str = "auto", precision: str = "fp32", batch: int = 8, test_views: str = "1x1",
                  base_weights: str | None = None, min_frames: int | None = None) -> list[dict[str, Any]]:
    """Per-class probabilities for each clip (a frame folder or a video file), in the order given;
    the softmax of the logits averaged over `test_views` (`trainer.Predictor.predict_rows`; `path`
    may also be an exported .onnx file)."""
    from trainer.predictor import Predictor

    predictor = Predictor(path, device=device, precision=precision, test_views=test_views, batch=batch,
                          base_weights=base_weights, min_frames=min_frames)
    return predictor.predict_rows(list(clips), face_crop=face_crop)
