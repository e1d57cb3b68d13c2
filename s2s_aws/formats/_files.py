"""Atomic file writing: a temporary file beside the target, renamed into place when complete."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["create_temp_beside"]


def create_temp_beside(target: str | os.PathLike) -> tuple[int, str]:
    """Create an empty temporary file in ``target``'s folder; return ``(fd, path)``.

    Unlike :func:`tempfile.mkstemp` the file gets the usual permissions (0666 minus the umask), so the
    renamed result looks like any other file the user writes.
    """
    target = Path(target)
    folder = target.parent
    while True:
        tmp = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:  # pragma: no cover - astronomically unlikely
            continue
