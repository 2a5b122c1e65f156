"""Checkpoints, the one module for them: the file format and its version, the one safe loader,
`module.` prefix stripping, model payloads, run checkpoints and the RNG state they carry.

A native file is `{"format": "dferclip-toolkit", "format_version": 1, "model": payload, ...}`
(payload: config, texts, state_dict, preprocessing). Run checkpoints add the engine's own keys
beside `model`:

- `kind`: `"run"` (last.pt: everything needed to resume) or `"model"` (best.pt: the selected model)
- `run_config`: the RunConfig as a dict; `classes`; `text`: descriptor set id and content hash
- `preprocessing`: num_segments and image size the model expects
- for `"run"`: `optimizer`, `scheduler`, `scaler`, `epoch`, `step_in_epoch`, `rng` (torch, numpy,
  python), `history` (per-epoch metrics so far), `partial` (running sums of the unfinished epoch),
  `selection` (the best score so far and its epoch)

A PEFT model (`peft` lora or adapter) whose backbone was loaded from a weights file is written for
use (best.pt, `save_model`) as a delta, `format_version` 2: its payload's `state_dict` holds only
what is not the base file's own tensors, unchanged (the LoRA / adapter weights, the temporal model,
the prompt context and the prompt buffers), and `base_weights` = `{"pretrained": the config's ref,
"sha256": "sha256:<hex>" of the file loaded}`. Loading one builds the model from the base weights,
checks their sha256, then loads the delta strictly. Every other file (non-PEFT models, PEFT models
over random weights, and last.pt, which resumes from full weights) holds every weight and stays
`format_version` 1, as before.

Files hold only tensors and plain Python data, so they load with `torch.load(weights_only=True)`
(`torch_load`); a foreign file (the authors' .pth, `trainer.model.official`) may fall back to the
restricted unpickler of `safe_pickle`, which never runs pickled code. Writes go to a temporary file
in the same folder and are `os.replace`d over the target (run checkpoints are fsynced too): a crash
or a full disk leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from promptkit.fileio import write_atomic

from trainer.errors import BackboneError, CheckpointError
from trainer.model import safe_pickle
from trainer.model.config import ModelConfig
from trainer.model.dferclip import DFERCLIP, build_model
from trainer.model.texts import ClassTexts

FORMAT = "dferclip-toolkit"
FORMAT_VERSION = 1  # a file whose model payload holds every weight
DELTA_VERSION = 2  # a file whose model payload is a PEFT delta over base weights (`base_weights`)
READS_UP_TO = DELTA_VERSION
_PREFIX = "module."  # DataParallel / DistributedDataParallel wrappers


# ---------------------------------------------------------------------- files
def torch_load(path: str | os.PathLike[str], *, foreign: bool = False) -> Any:
    """The one checkpoint reader: `torch.load(weights_only=True)` on the CPU. With `foreign`, a file
    that weights_only refuses (a pickled recorder object, ...) is read with the restricted unpickler
    of `safe_pickle` instead; no pickled callable runs either way."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - weights_only refused a global (or the file is not torch at all)
        if not foreign:
            raise
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=safe_pickle)


def strip_module_prefix(state: dict[str, Any]) -> dict[str, Any]:
    """`state` with the DataParallel `module.` prefix removed from every key that has it."""
    return {(k[len(_PREFIX):] if isinstance(k, str) and k.startswith(_PREFIX) else k): v for k, v in state.items()}


# ---------------------------------------------------------------------- run checkpoints
def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write `state` atomically to `path` (temp file + fsync + os.replace); return the path.

    On any OSError (no space left, permission, ...) the temp file is removed, the old checkpoint is
    kept and a CheckpointError says so.
    """
    target = Path(path)
    try:
        return write_atomic(target, lambda handle: torch.save(state, handle), fsync=True)
    except OSError as exc:
        kept = " (previous checkpoint kept)" if target.exists() else ""
        if exc.errno == errno.ENOSPC:
            raise CheckpointError(f"no space left to write checkpoint {target}{kept}; free disk space and resume") from exc
        raise CheckpointError(f"cannot write checkpoint {target}: {exc.strerror or exc}{kept}") from exc


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read a toolkit checkpoint with `weights_only=True`; check its format (and `kind` if given)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        state = torch_load(p)
    except Exception as exc:  # torch raises many kinds for a corrupt or foreign file
        raise CheckpointError(f"cannot read checkpoint {p}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{p} is not a dferclip-toolkit checkpoint (for the authors' .pth files run `trainer import-official` first)"
        )
    if state.get("format_version", 0) > READS_UP_TO:
        raise CheckpointError(f"{p} has format_version {state.get('format_version')}; this trainer reads up to {READS_UP_TO}")
    if kind is not None and state.get("kind") != kind:
        raise CheckpointError(f"{p} is a {state.get('kind') or 'model-only'!s} checkpoint; expected a {kind} checkpoint")
    return state


# ---------------------------------------------------------------------- model payloads
def model_payload(model: DFERCLIP) -> dict[str, Any]:
    """Everything needed to rebuild `model` without its pretrained weights file."""
    return {
        "config": model.config.to_dict(),
        "texts": model.texts.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "preprocessing": model.preprocessing(),
    }


def compact_payload(model: DFERCLIP) -> dict[str, Any]:
    """The payload a model is written with for use (best.pt, `save_model`): for a PEFT model whose
    backbone came from a weights file, only what is not that file's own, unchanged tensors, plus
    `base_weights` (the ref and the file's sha256); for any other model, `model_payload`."""
    if model.config.peft == "none" or model.base_sha256 is None or model.config.pretrained is None:
        return model_payload(model)  # a random backbone has no file to refer to: every weight is kept
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
             if k not in model.base_keys or k in trainable}
    return {
        "config": model.config.to_dict(),
        "texts": model.texts.to_dict(),
        "state_dict": state,
        "preprocessing": model.preprocessing(),
        "base_weights": {"pretrained": model.config.pretrained, "sha256": model.base_sha256},
    }


def payload_version(payload: dict[str, Any]) -> int:
    """The `format_version` of a file holding `payload`: 2 for a delta, 1 (as before) otherwise."""
    return DELTA_VERSION if "base_weights" in payload else FORMAT_VERSION


def model_from_payload(payload: dict[str, Any], *, base_weights: str | None = None,
                       what: str = "the checkpoint", base_option: str = "--base-weights") -> DFERCLIP:
    """Rebuild a model from `model_payload` / `compact_payload` output. A full payload needs no
    weights file; a delta is built over its base weights (`base_weights` overrides where they are),
    whose sha256 must be the recorded one. `base_option`: the caller's option that sets `base_weights`,
    named in the messages."""
    if not isinstance(payload, dict) or not {"config", "texts", "state_dict"} <= set(payload):
        raise CheckpointError(f"{what} has a model payload without config, texts or state_dict; it was not written by this toolkit")
    cfg = ModelConfig.from_dict(dict(payload["config"]))
    texts = ClassTexts.from_dict(payload["texts"])
    if "base_weights" not in payload:
        model = build_model(cfg, texts, load_weights=False)
        load_state(model, payload["state_dict"], what)
        return model
    ref, sha = _base_reference(payload["base_weights"], cfg, what)
    where = base_weights or ref
    try:
        model = build_model(ModelConfig(**{**cfg.to_dict(), "pretrained": where}), texts, load_weights=True)
    except BackboneError as exc:
        raise CheckpointError(
            f"{what} holds only the {cfg.peft} delta over the base weights {ref!r}, which cannot be loaded "
            f"({exc}); put the base weights there, or pass them with {base_option} PATH"
        ) from exc
    if model.base_sha256 != sha:
        raise CheckpointError(
            f"{what} is a delta over base weights with {_short(sha)}, but {where!r} has {_short(model.base_sha256)}; "
            f"pass the base weights it was trained from with {base_option} PATH"
        )
    load_state(model, payload["state_dict"], what, optional=model.base_keys)
    return model


def _base_reference(base: Any, cfg: ModelConfig, what: str) -> tuple[str, str]:
    """(pretrained ref, sha256) of a delta's `base_weights` entry, checked."""
    ref = base.get("pretrained") if isinstance(base, dict) else None
    sha = base.get("sha256") if isinstance(base, dict) else None
    if not isinstance(ref, str) or not isinstance(sha, str) or not sha.startswith("sha256:"):
        raise CheckpointError(f"{what} has a malformed base_weights entry {base!r}; it was not written by this toolkit")
    if cfg.peft == "none":
        raise CheckpointError(f"{what} holds a delta over base weights, but its model config has no PEFT (peft none)")
    return ref, sha


def _short(sha: str | None) -> str:
    """`sha256:0123456789ab` (12 hex digits) for messages."""
    return "no sha256" if sha is None else sha[: len("sha256:") + 12]


def load_state(model: DFERCLIP, state: dict[str, torch.Tensor], what: str,
               optional: frozenset[str] = frozenset()) -> None:
    """Strict load with one-line errors for missing, unexpected and wrongly shaped weights; keys in
    `optional` (a delta's base weights, already loaded) may be absent from `state`."""
    own = model.state_dict()
    for key, value in state.items():
        if key in own and tuple(own[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{what} does not fit the model: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}"
            )
    missing = sorted(set(own) - set(state) - optional)
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
        raise CheckpointError(f"{what} does not fit the model: weights {', '.join(parts)}")
    model.load_state_dict(state, strict=not optional)


def save_model(model: DFERCLIP, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Write a native checkpoint atomically (temp file in the same folder + os.replace); a PEFT model
    over a weights file is written as a delta (`compact_payload`)."""
    payload = compact_payload(model)
    obj = {"format": FORMAT, "format_version": payload_version(payload), "model": payload}
    obj.update(extra or {})
    return write_atomic(path, lambda handle: torch.save(obj, handle))


def read_native(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The dict of a native checkpoint file, with clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch_load(path)
    except Exception as exc:  # noqa: BLE001 - foreign pickles, truncated files, not torch at all
        if looks_official(path):
            raise CheckpointError(
                f"{path} looks like an authors' DFER-CLIP checkpoint; convert it first: trainer import-official {path} OUT.pth"
            ) from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a DFER-CLIP toolkit checkpoint ({first[:160]})") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        if isinstance(obj, dict) and _has_official_keys(obj):
            raise CheckpointError(
                f"{path} is an authors' DFER-CLIP checkpoint; convert it first: trainer import-official {path} OUT.pth"
            )
        raise CheckpointError(f"{path} is not a DFER-CLIP toolkit checkpoint (no format: {FORMAT!r} key)")
    version = obj.get("format_version")
    if not isinstance(version, int) or version > READS_UP_TO:
        raise CheckpointError(
            f"{path} has format_version {version!r}; this toolkit reads up to {READS_UP_TO}, upgrade it"
        )
    if "model" not in obj:
        raise CheckpointError(f"{path} holds no model payload")
    return obj


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu", *,
               base_weights: str | None = None) -> DFERCLIP:
    """The model of a native checkpoint file, a run folder (its best.pt, else last.pt) or a folder
    written by `trainer export --format hf`, in eval mode (`base_weights`: where a delta
    checkpoint's base weights are, instead of its recorded ref). `trainer.load_model` is this."""
    from trainer.model.sources import read_source  # sources builds on this module: imported here, not at the top

    obj, resolved = read_source(path)
    model = model_from_payload(obj["model"], base_weights=base_weights, what=str(resolved))
    return model.to(device).eval()


def _has_official_keys(obj: dict[str, Any]) -> bool:
    state = obj.get("state_dict", obj)
    if not isinstance(state, dict):
        return False
    return any(isinstance(k, str) and k.endswith("prompt_learner.token_suffix") for k in state)


def looks_official(path: Path) -> bool:
    """Cheap check: does the pickle mention the authors' prompt learner keys?"""
    try:
        obj = torch_load(path, foreign=True)
    except Exception:  # noqa: BLE001 - only a hint for the error message
        return False
    return isinstance(obj, dict) and _has_official_keys(obj)


def describe_checkpoint(path: str | os.PathLike[str], obj: dict[str, Any] | None = None) -> dict[str, Any]:
    """A summary of a native checkpoint without building the model: config, texts, sizes (of the
    delta only, for a delta checkpoint), base weights, extras (`obj`: the file's dict, already read)."""
    obj = read_native(path) if obj is None else obj
    payload = obj["model"]
    if not isinstance(payload, dict) or "config" not in payload or "state_dict" not in payload:
        raise CheckpointError(f"{path} holds a malformed model payload")
    cfg = ModelConfig.from_dict(dict(payload["config"]))
    texts = ClassTexts.from_dict(payload.get("texts", {}))
    counts: dict[str, int] = {}
    for key, value in payload["state_dict"].items():
        part = key.split(".", 1)[0]
        counts[part] = counts.get(part, 0) + int(value.numel())
    extras = {k: v for k, v in obj.items() if k not in ("format", "format_version", "model")}
    return {
        "path": str(path),
        "format_version": obj.get("format_version"),
        "config": cfg.to_dict(),
        "texts": texts.to_dict(),
        "preprocessing": payload.get("preprocessing", {}),
        "tensor_elements": counts,
        "base_weights": payload.get("base_weights"),  # a delta's base (ref and sha256), None for full weights
        "extra_keys": sorted(extras),
        "imported_from": extras.get("imported_from"),
        "kind": extras.get("kind"),  # run (last.pt) | model (best.pt, save_model) | None (imported)
        "epoch": extras.get("epoch"),
        "metrics": _metrics_of(saved_record(extras)),
    }


def frames_per_clip(obj: dict[str, Any], model: torch.nn.Module) -> int:
    """The frames a checkpoint's model samples per clip: what its run recorded (`preprocessing`,
    the data side's `num_segments`), else the model's own `num_frames`."""
    return int((obj.get("preprocessing") or {}).get("num_segments") or model.config.num_frames)


def saved_record(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The epoch record (epoch, test / val metrics) of the weights a run checkpoint holds: best.pt
    records its epoch's `metrics`, last.pt the `history` of every epoch (its last entry); None for
    a checkpoint that records neither (imported, save_model)."""
    record = obj.get("metrics")
    if not isinstance(record, dict) and obj.get("history"):
        record = obj["history"][-1]
    return record if isinstance(record, dict) else None


def _metrics_of(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The test (and val) UAR / WAR of an epoch record."""
    if record is None:
        return None
    return {split: {k: record[split][k] for k in ("uar", "war")} for split in ("test", "val")
            if isinstance(record.get(split), dict)}


# ---------------------------------------------------------------------- RNG state
def rng_state() -> dict[str, Any]:
    """The global RNG states (torch CPU, CUDA if present, numpy, python) as a checkpointable dict."""
    np_state = np.random.get_state()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": np_state[0], "state": torch.from_numpy(np_state[1].copy()), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": _python_state_to_list(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by `rng_state`."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state["key"], np_state["state"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    random.setstate(_python_state_from_list(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_list(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _python_state_from_list(raw: list) -> tuple:
    version, internal, gauss = raw
    return (version, tuple(internal), gauss)
