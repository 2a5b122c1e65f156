"""Atomic file writes, shared by promptkit and trainer (trainer may import promptkit).

A write goes to a temporary file in the target's own folder and is moved over the target with
`os.replace`, so a reader sees the old file or the new one, never a half-written one; on any
failure the temporary file is removed and the old file stays as it was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Union

Content = Union[bytes, str, Callable[[BinaryIO], None]]


def write_atomic(path: str | os.PathLike[str], content: Content, *, fsync: bool = False) -> Path:
    """Write `content` (bytes, text as UTF-8, or a `fill(handle)` callable) to `path` atomically.

    With `fsync` the data and the folder entry are flushed to disk before returning (checkpoints).
    OSError (no space left, permission denied, ...) propagates after the temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
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
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(target.parent)
    return target


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
