"""GPU throughput switches of `trainer run`: where train frames are decoded (`--decode`,
`data.decode`), `torch.compile` (`--compile`), the fused optimiser step, and the step figures kept
on the device.

- `data.decode`: `cpu` (the default: loader workers decode and augment), `gpu` (workers ship JPEG
  bytes; `trainer.data.batched` decodes with nvJPEG and augments batched on the device), `auto`
  (gpu on a CUDA device, else cpu). `gpu` without CUDA is refused with one line.
- `compile`: `torch.compile` of the image encoder and the temporal model, in place (the weights keep
  their names, so checkpoints and resume do not change). A compiler that does not work on this
  machine fails the first step; that failure becomes one line (`compile_error`).
- On CUDA the optimiser runs its fused kernels; on the CPU it stays as it was (same results).
- `StepFigures`: each step's (loss sum, clips) stay a device tensor; they are read once per
  `interval` steps (1 on the CPU, where reading costs nothing), so a CUDA step never waits for
  the host. A non-finite loss is found when read, before any checkpoint is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from trainer.errors import InputError, TrainerError

CUDA_READ_EVERY = 10  # steps between reads of the step figures on a CUDA device


def batched_decode(decode: str, device: torch.device) -> bool:
    """True when train frames are decoded batched on the device (`data.decode` gpu, or auto on CUDA)."""
    if decode == "cpu" or (decode == "auto" and device.type != "cuda"):
        return False
    if device.type != "cuda":
        raise InputError(f"--decode gpu needs CUDA; this run's device is {device.type} "
                         "(no CUDA GPU visible, or --device cpu): use --decode cpu or auto")
    try:
        import torchvision.io  # noqa: F401 - nvJPEG decoding comes from torchvision
    except ImportError as exc:
        raise InputError(f"--decode gpu needs torchvision's image decoders: {exc}; use --decode cpu") from None
    return True


def compile_model(model: torch.nn.Module) -> None:
    """`torch.compile` the image encoder and the temporal model of a DFERCLIP, in place."""
    if not hasattr(torch, "compile") or not hasattr(torch.nn.Module, "compile"):
        raise InputError(f"--compile needs torch >= 2.2; this is torch {torch.__version__}: run without --compile")
    try:
        import torch._dynamo as dynamo

        supported = dynamo.is_dynamo_supported()
    except Exception:  # noqa: BLE001 - an unsupported Python makes the import itself fail
        supported = False
    if not supported:
        raise InputError(f"--compile is not supported by torch {torch.__version__} on this Python: run without --compile")
    for part in (model.image_encoder, getattr(model, "temporal", None)):
        if part is not None:
            part.compile()


def compile_error(exc: BaseException) -> TrainerError | None:
    """The one-line error for a compiler failure met in the first compiled step, else None."""
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:  # the compiler's own error may be a cause or context
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for error in chain:
        module = type(error).__module__ or ""
        if module.startswith(("torch._dynamo", "torch._inductor")) or type(error).__name__ in (
                "BackendCompilerFailed", "InductorError", "CppCompileError"):
            first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
            return TrainerError(f"--compile failed: torch.compile does not work on this machine ({first.strip()[:200]}); "
                                "run without --compile")
    return None


def optimizer_options(device: torch.device) -> dict[str, Any]:
    """Extra optimiser arguments: the fused step on CUDA, nothing on the CPU (results unchanged)."""
    return {"fused": True} if device.type == "cuda" else {}


@dataclass
class StepFigures:
    """Per-step figures kept on the device until read: `add` after each step, `due` says when to
    `read` (every `interval` steps); `read` returns the steps as host numbers, in order."""

    interval: int = 1
    pending: list[tuple[int, int, torch.Tensor, dict[str, float]]] = field(default_factory=list)

    @classmethod
    def for_device(cls, device: torch.device) -> "StepFigures":
        return cls(CUDA_READ_EVERY if device.type == "cuda" else 1)

    def add(self, epoch_step: int, global_step: int, total: torch.Tensor, lrs: dict[str, float]) -> None:
        """`total`: (2,) float64 on the device, (loss sum, clips) over all ranks."""
        self.pending.append((epoch_step, global_step, total, lrs))

    def due(self) -> bool:
        return len(self.pending) >= self.interval

    def read(self) -> list[tuple[int, int, float, int, dict[str, float]]]:
        """(step in epoch, global step, loss sum, clips, lrs) of each pending step; one device read."""
        if not self.pending:
            return []
        values = torch.stack([p[2] for p in self.pending]).cpu().tolist()  # (n, 2)
        out = [(e, g, float(v[0]), int(v[1]), lrs) for (e, g, _, lrs), v in zip(self.pending, values)]
        self.pending = []
        return out
