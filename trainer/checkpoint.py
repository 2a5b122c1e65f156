"""Run checkpoints: atomic writes that never lose the previous file, and checked reads.

A run checkpoint is a native toolkit checkpoint (`format: "dferclip-toolkit"`, `model: payload`,
see `trainer.model.checkpoint`) plus the engine's own keys:

- `kind`: `"run"` (last.pt: everything needed to resume) or `"model"` (best.pt: the selected model)
- `run_config`: the RunConfig as a dict; `classes`; `text`: descriptor set id and content hash
- `preprocessing`: num_segments and image size the model expects
- for `"run"`: `optimizer`, `scheduler`, `scaler`, `epoch`, `step_in_epoch`, `rng` (torch, numpy,
  python), `history` (per-epoch metrics so far), `partial` (running sums of the unfinished epoch),
  `selection` (the best score so far and its epoch)

Writes go to a temporary file in the same folder, are fsynced, then `os.replace`d over the target:
a crash or a full disk leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from promptkit.fileio import write_atomic

from trainer.errors import TrainerError

FORMAT = "dferclip-toolkit"
FORMAT_VERSION = 1


class CheckpointError(TrainerError):
    """A checkpoint cannot be written or read."""


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
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a corrupt or foreign file
        raise CheckpointError(f"cannot read checkpoint {p}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{p} is not a dferclip-toolkit checkpoint (for the authors' .pth files run `trainer import-official` first)"
        )
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{p} has format_version {state.get('format_version')}; this trainer reads up to {FORMAT_VERSION}")
    if kind is not None and state.get("kind") != kind:
        raise CheckpointError(f"{p} is a {state.get('kind') or 'model-only'!s} checkpoint; expected a {kind} checkpoint")
    return state


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
