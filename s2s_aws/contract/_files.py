"""The one atomic file write: a temporary file beside the target, fsync, rename into place.

A reader never sees half a file, and a failed write leaves the target as it was and no temporary
file behind. Unlike :func:`tempfile.mkstemp` (mode 0600) the file gets the permissions of any file
the user writes (0666 minus the umask, so 0644 under the usual umask 022).

Example::

    from s2s_aws.contract._files import atomic_write, write_json_atomic
    write_json_atomic("out/evaluation.json", {"bleu": 23.4})
    with atomic_write("out/model.bin") as f:
        f.write(b"...")
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = ["create_temp_beside", "commit_temp", "discard_temp", "atomic_write", "write_bytes_atomic",
           "write_text_atomic", "write_json_atomic"]


def create_temp_beside(target: str | os.PathLike) -> tuple[int, str]:
    """Create an empty temporary file in ``target``'s folder; return ``(fd, path)``.

    The file gets the usual permissions (0666 minus the umask). Finish with :func:`commit_temp`
    or :func:`discard_temp`.
    """
    target = Path(target)
    folder = target.parent
    while True:
        tmp = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:  # pragma: no cover - astronomically unlikely
            continue


def commit_temp(file: IO[Any], tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Flush and fsync the open ``file`` (the temporary ``tmp``), close it, rename it onto ``target``."""
    try:
        file.flush()
        os.fsync(file.fileno())
    finally:
        file.close()
    os.replace(tmp, target)


def discard_temp(file: IO[Any] | None, tmp: str | os.PathLike) -> None:
    """Close ``file`` (if open) and remove the temporary file ``tmp``; the target stays untouched."""
    if file is not None:
        with contextlib.suppress(OSError):
            file.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str = "utf-8",
                 mkdir: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` atomically.

    ``mode`` is ``"wb"`` or ``"w"`` (text, ``encoding``, ``\\n`` line ends). An exception inside the
    ``with`` block removes the temporary file and leaves ``path`` as it was. ``mkdir=True`` creates
    the parent folders first.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    if mkdir:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temp_beside(target)
    try:
        file = os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": encoding, "newline": "\n"}))
    except BaseException:
        os.close(fd)
        discard_temp(None, tmp)
        raise
    try:
        yield file
        commit_temp(file, tmp, target)
    except BaseException:
        discard_temp(file, tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, mkdir: bool = False) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb", mkdir=mkdir) as f:
        f.write(data)


def write_text_atomic(path: str | os.PathLike, text: str, *, mkdir: bool = False) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (``\\n`` line ends)."""
    with atomic_write(path, "w", mkdir=mkdir) as f:
        f.write(text)


def write_json_atomic(path: str | os.PathLike, value: Any, *, mkdir: bool = False, **dumps: Any) -> None:
    """Write ``json.dumps(value, **dumps)`` plus a newline to ``path`` atomically (UTF-8)."""
    write_text_atomic(path, json.dumps(value, **dumps) + "\n", mkdir=mkdir)
