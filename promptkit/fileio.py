"""Atomic file writes and the one JSON-object reader, shared by promptkit and trainer (trainer may
import promptkit).

A write goes to a temporary file in the target's own folder and is moved over the target with
`os.replace`, so a reader sees the old file or the new one, never a half-written one; on any
failure the temporary file is removed and the old file stays as it was.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Union

Content = Union[bytes, str, Callable[[BinaryIO], None]]


def read_json_object(path: str | os.PathLike[str], what: str, error: type[Exception],
                     missing: str | None = None) -> dict[str, Any]:
    """The JSON object in `path`; `error` with one line naming `what` and the file when it is
    missing (`missing`, when given, is that line), unreadable, not JSON or not an object."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(missing or f"{what} not found: {p}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} {p} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except UnicodeDecodeError:
        raise error(f"{what} {p} is not UTF-8 text; give a JSON file") from None
    except OSError as exc:  # a folder, no permission, ...
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    if not isinstance(raw, dict):
        raise error(f"{what} {p} must hold a JSON object; got {type(raw).__name__}")
    return raw


def write_atomic(path: str | os.PathLike[str], content: Content, *, fsync: bool = False) -> Path:
    """Write `content` (bytes, text as UTF-8, or a `fill(handle)` callable) to `path` atomically.

    With `fsync` the data and the folder entry are flushed to disk before returning (checkpoints).
    OSError (no space left, permission denied, ...) propagates after the temporary file is removed.
    """
    target = Path(path)
    make_folder(target.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content.encode("utf-8") if isinstance(content, str) else content)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except RuntimeError as exc:  # torch.save wraps the OSError of a failed write in a RuntimeError
        cause = _os_error(exc, target.parent)
        tmp.unlink(missing_ok=True)
        if cause is None:
            raise
        raise cause from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(target.parent)
    return target


def make_folder(folder: str | os.PathLike[str]) -> Path:
    """`mkdir -p folder`, with a NotADirectoryError naming the regular file in the way (mkdir's own
    error says "File exists", which names the wrong problem)."""
    folder = Path(folder)
    for ancestor in (folder, *folder.parents):
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{ancestor} is a file, not a folder", str(folder))
            break
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _os_error(exc: BaseException, folder: Path) -> OSError | None:
    """The OSError behind a library's RuntimeError (its cause or context), or ENOSPC when the folder's
    disk is full; None when the failure has nothing to do with the file system."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    try:
        full = shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        full = False
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder)) if full else None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_new_version(folder: Path, first: int, render: Callable[[int], str], tries: int = 100) -> tuple[Path, int]:
    """Write `render(n)` as `folder/v{n}.json` for the first n >= `first` that no one has claimed, and
    make it read-only; returns (file, n). The text goes to a temporary file (fsynced) that is
    hard-linked into place, which fails if the target exists: a version appears whole or not at
    all, and two concurrent writers never both create the same one. OSError propagates (EEXIST
    when `tries` numbers were all taken)."""
    make_folder(folder)
    fd, tmp_name = tempfile.mkstemp(prefix=".writing-", suffix=".json", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        number = first
        for _ in range(tries):
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(render(number))
                handle.flush()
                os.fsync(handle.fileno())
            target = folder / f"v{number}.json"
            try:
                os.link(tmp, target)
            except FileExistsError:
                number += 1
                continue
            try:
                target.chmod(0o444)
            except OSError:  # some filesystems ignore modes; immutability is still enforced by the hash
                pass
            return target, number
        raise OSError(errno.EEXIST, f"could not claim a new version after {tries} tries", str(folder))
    finally:
        tmp.unlink(missing_ok=True)

