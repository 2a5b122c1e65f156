"""A restricted unpickler for foreign checkpoints, passed to torch.load as `pickle_module`.

Tensors, storages and plain containers load as usual. Any other global the pickle names
(a training-curve recorder class from the authors' main.py, numpy helpers, ...) is replaced by
an inert placeholder: calling it only records the arguments, so no pickled callable ever runs.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, BinaryIO

import torch

_ALLOWED: dict[tuple[str, str], str] = {
    ("torch._utils", "_rebuild_tensor"): "torch",
    ("torch._utils", "_rebuild_tensor_v2"): "torch",
    ("torch._utils", "_rebuild_tensor_v3"): "torch",
    ("torch._utils", "_rebuild_parameter"): "torch",
    ("torch._utils", "_rebuild_parameter_with_state"): "torch",
    ("torch", "Size"): "torch",
    ("torch", "Tensor"): "torch",
    ("torch.nn.parameter", "Parameter"): "torch",
    ("collections", "OrderedDict"): "collections",
    ("builtins", "set"): "builtins",
    ("builtins", "frozenset"): "builtins",
    ("builtins", "slice"): "builtins",
}


class Opaque:
    """Stands in for an object whose class was not loaded; keeps what the pickle gave it."""

    module = "?"
    qualname = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "Opaque":
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<opaque {self.module}.{self.qualname}>"


class Unpickler(pickle.Unpickler):
    """Loads only the allowed globals; everything else becomes a subclass of Opaque."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return type(f"Opaque_{name}", (Opaque,), {"module": module, "qualname": name})


def load(file: BinaryIO, **kwargs: Any) -> Any:
    """`pickle.load` with the restricted Unpickler (used by torch.load for legacy files)."""
    return Unpickler(file, **kwargs).load()


def loads(data: bytes, **kwargs: Any) -> Any:
    return load(io.BytesIO(data), **kwargs)
