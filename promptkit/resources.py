"""Where the shipped templates and descriptor sets live, in a checkout and in an installed wheel.

In a checkout they are the top-level `templates/` and `descriptions/` folders; a wheel carries them
as `promptkit/_templates/` and `promptkit/_shipped/` (see the package-dir mapping in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def templates_dir() -> Path:
    """Directory of the shipped Jinja2 templates."""
    return _first_dir(_PACKAGE / "_templates", _CHECKOUT / "templates")


def shipped_descriptions_dir() -> Path:
    """Directory of the shipped descriptor sets (one folder per class set)."""
    return _first_dir(_PACKAGE / "_shipped", _CHECKOUT / "descriptions")


def _first_dir(installed: Path, checkout: Path) -> Path:
    # The wheel's copy wins; the checkout's folder is used only next to its pyproject.toml, so an
    # unrelated `templates/` beside site-packages is never picked up.
    if installed.is_dir() or not (_CHECKOUT / "pyproject.toml").is_file():
        return installed
    return checkout
