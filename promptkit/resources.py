"""Where the shipped templates and descriptor sets live, in a checkout and in an installed wheel."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """Directory of the shipped Jinja2 templates (`templates/` in a checkout)."""
    local = _REPO_ROOT / "templates"
    if local.is_dir():
        return local
    return Path(str(resources.files("promptkit.templates")))


def shipped_descriptions_dir() -> Path:
    """Directory of the shipped descriptor sets (`descriptions/` in a checkout)."""
    local = _REPO_ROOT / "descriptions"
    if local.is_dir():
        return local
    return Path(str(resources.files("promptkit.shipped")))
