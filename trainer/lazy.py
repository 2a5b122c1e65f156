"""Package names that load on first use (PEP 562): `__getattr__ = lazy_names(__name__, {name: module})`
lets `from trainer.model import DFERCLIP` work while `import trainer.model.config` stays light."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_names(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `where[name]` and returns its `name` on first use."""

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
