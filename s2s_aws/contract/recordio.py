"""dmlc/MXNet RecordIO framing, as used by SageMaker's ``application/x-recordio-protobuf``.

Each record is ``magic (u32 LE 0xCED7230A)``, ``lrec (u32 LE)``, the payload, then zero padding to a
multiple of 4 bytes; ``lrec = cflag << 29 | length``. cflag 0 is a whole record; 1/2/3 are the
first/middle/last parts of a record that a writer split where the magic value occurred at an aligned
offset of the payload. The reader joins such parts and re-inserts the 4 magic bytes between them.

Example::

    from s2s_aws.contract import recordio
    with recordio.RecordIOWriter("data.rec") as w:
        w.write(b"payload")
    assert list(recordio.iter_records("data.rec")) == [b"payload"]
"""
from __future__ import annotations

import io
import logging
import os
import struct
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Union

from ..errors import FormatError
from ._files import commit_temp, create_temp_beside, discard_temp

__all__ = [
    "MAGIC", "MAGIC_BYTES", "MAX_LENGTH", "RecordIOWriter", "iter_records", "encode_records",
    "decode_records", "frame",
]

logger = logging.getLogger(__name__)

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
#: largest payload (or payload part) one header can describe: 29 bits
MAX_LENGTH = (1 << 29) - 1

_HEADER = struct.Struct("<II")
_PADS = (b"", b"\0\0\0", b"\0\0", b"\0")

PathOrFile = Union[str, os.PathLike, BinaryIO]


def _frame_part(cflag: int, part: bytes | memoryview) -> bytes:
    n = len(part)
    if n > MAX_LENGTH:
        raise FormatError(f"a record of {n} bytes is larger than RecordIO allows ({MAX_LENGTH} bytes); "
                          "split the data into smaller records")
    return _HEADER.pack(MAGIC, cflag << 29 | n) + bytes(part) + _PADS[n & 3]


def frame(payload: bytes, *, split_on_magic: bool = False) -> bytes:
    """Return the RecordIO bytes of one record.

    With ``split_on_magic`` the payload is split where the magic value occurs at a 4-byte aligned
    offset (cflag 1/2/3), as dmlc's writer does; otherwise the record is written whole (cflag 0).
    """
    if not split_on_magic:
        return _frame_part(0, payload)
    view = memoryview(payload)
    parts: list[bytes] = []
    start = 0
    pos = payload.find(MAGIC_BYTES)
    while pos >= 0:
        if pos % 4 == 0:
            parts.append(_frame_part(1 if start == 0 else 2, view[start:pos]))
            start = pos + 4
            pos = payload.find(MAGIC_BYTES, start)
        else:
            pos = payload.find(MAGIC_BYTES, pos + 1)
    parts.append(_frame_part(3 if start else 0, view[start:]))
    return b"".join(parts)


class RecordIOWriter:
    """Write RecordIO records to a path or a binary file object (a context manager).

    Given a path, the records go to a temporary file beside it that is renamed onto the path when the
    writer is closed without an error, so a failed run never leaves a half-written file behind.

    ``split_on_magic=True`` splits payloads holding the magic value at an aligned offset, as dmlc's
    writer does; readers of this module accept both forms.
    """

    def __init__(self, target: PathOrFile, *, split_on_magic: bool = False) -> None:
        self._split = split_on_magic
        self.count = 0
        self._path: Path | None = None
        self._tmp: str | None = None
        if isinstance(target, (str, os.PathLike)):
            self._path = Path(target)
            fd, self._tmp = create_temp_beside(self._path)
            self._file: BinaryIO = os.fdopen(fd, "wb")
        else:
            self._file = target

    def write(self, payload: bytes) -> None:
        """Append one record."""
        self._file.write(frame(payload, split_on_magic=self._split))
        self.count += 1

    def write_framed(self, data: bytes, count: int) -> None:
        """Append bytes that already hold ``count`` complete RecordIO records (fast paths)."""
        self._file.write(data)
        self.count += count

    def close(self) -> None:
        """Finish the file (fsync the temporary file and rename it onto the path)."""
        if self._path is None or self._tmp is None:
            return
        commit_temp(self._file, self._tmp, self._path)
        self._tmp = None

    def abort(self) -> None:
        """Drop what was written (path targets only): the path is left untouched."""
        if self._path is None or self._tmp is None:
            return
        discard_temp(self._file, self._tmp)
        self._tmp = None

    def __enter__(self) -> "RecordIOWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if exc_type is None:
            self.close()
        else:
            self.abort()


#: most bytes asked of a stream in one read: a header may claim up to 512 MiB, and a buffered
#: file's ``read(n)`` allocates ``n`` bytes before reading, so large records are read in pieces and
#: memory grows only with the bytes that really follow
_READ_CHUNK = 16 * 1024 * 1024


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(min(n, _READ_CHUNK))
    if len(data) == n or not data:
        return data
    chunks = [data]
    got = len(data)
    while got < n:
        more = f.read(min(n - got, _READ_CHUNK))
        if not more:
            break
        chunks.append(more)
        got += len(more)
    return b"".join(chunks)


def _iter_stream(f: BinaryIO, name: str) -> Iterator[bytes]:
    offset = 0
    parts: list[bytes] | None = None  # parts of a split record being joined
    split_at = 0
    while True:
        header = _read_exact(f, 8)
        if not header:
            break
        if len(header) < 8:
            raise FormatError(f"truncated RecordIO header ({len(header)} of 8 bytes); the file is cut short, "
                              "re-create or re-download it", path=name, offset=offset)
        magic, lrec = _HEADER.unpack(header)
        if magic != MAGIC:
            raise FormatError(f"bad RecordIO magic 0x{magic:08X} (expected 0x{MAGIC:08X}); this is not a "
                              "RecordIO file or it is corrupt", path=name, offset=offset)
        cflag, length = lrec >> 29, lrec & MAX_LENGTH
        padded = length + (-length & 3)
        body = _read_exact(f, padded)
        if len(body) < padded:
            raise FormatError(f"truncated RecordIO record: the header declares {length} bytes (+{padded - length} "
                              f"padding) but only {len(body)} follow; the file is cut short, re-create or "
                              "re-download it", path=name, offset=offset)
        payload = body[:length] if padded != length else body
        if cflag == 0:
            if parts is not None:
                raise FormatError("a whole record (cflag 0) interrupts a split record that started at byte "
                                  f"offset {split_at}; the file is corrupt", path=name, offset=offset)
            yield payload
        elif cflag == 1:
            if parts is not None:
                raise FormatError("a new split record (cflag 1) starts before the one at byte offset "
                                  f"{split_at} ended; the file is corrupt", path=name, offset=offset)
            parts, split_at = [payload], offset
        elif cflag in (2, 3):
            if parts is None:
                raise FormatError(f"a continuation part (cflag {cflag}) without a first part (cflag 1); "
                                  "the file is corrupt", path=name, offset=offset)
            parts.append(payload)
            if cflag == 3:
                yield MAGIC_BYTES.join(parts)
                parts = None
        else:
            raise FormatError(f"invalid RecordIO cflag {cflag} (expected 0-3); the file is corrupt",
                              path=name, offset=offset)
        offset += 8 + padded
    if parts is not None:
        raise FormatError("the file ends inside a split record (no cflag 3 part); the file is cut short, "
                          "re-create or re-download it", path=name, offset=split_at)


def iter_records(source: PathOrFile, name: str | None = None) -> Iterator[bytes]:
    """Yield the payload of every record in a RecordIO file (split records joined).

    ``source`` is a path or a binary file object; ``name`` names it in error messages.
    Raises :class:`~s2s_aws.errors.FormatError` (with path and byte offset) on a bad magic value,
    an invalid flag or a truncated record.
    """
    if isinstance(source, (str, os.PathLike)):
        label = name or os.fspath(source)
        try:
            f = open(source, "rb", buffering=1 << 20)
        except FileNotFoundError:
            raise FormatError("no such file; check the path", path=label) from None
        except IsADirectoryError:
            raise FormatError("is a directory, not a RecordIO file", path=label) from None
        with f:
            yield from _iter_stream(f, label)
    else:
        yield from _iter_stream(source, name or str(getattr(source, "name", None) or "<stream>"))


def encode_records(payloads: Iterable[bytes]) -> bytes:
    """Return the RecordIO bytes holding every payload (e.g. an HTTP request or response body)."""
    return b"".join(frame(p) for p in payloads)


def decode_records(data: bytes, name: str = "request body") -> list[bytes]:
    """Split RecordIO bytes into payloads; :class:`FormatError` naming ``name`` when malformed."""
    return list(_iter_stream(io.BytesIO(data), name))
