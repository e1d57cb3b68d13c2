"""Reading the inputs: ``.gz`` detection, chunks of whole lines, and source/target chunks that hold the
same lines (with the line-count check)."""
from __future__ import annotations

import collections
import gzip
import os
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, NamedTuple

from ..errors import FormatError, InputError

def _open_input(path: Path, what: str) -> BinaryIO:
    """Open a text input for binary reading, transparently gunzipping it (detected by its magic bytes)."""
    try:
        with open(path, "rb") as probe:
            magic = probe.read(2)
    except FileNotFoundError:
        raise InputError(f"{what} file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{what} path {path} is a directory; give a text file (one sentence per line)") from None
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb", buffering=1 << 20)


def _iter_chunks(f: BinaryIO, path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """Yield chunks of whole lines, each ending with ``\\n`` (one is added to a last unterminated line)."""
    rest = b""
    try:
        while True:
            block = f.read(chunk_bytes)
            if not block:
                break
            data = rest + block if rest else block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            rest = data[cut:]
            yield data[:cut]
    except (OSError, EOFError, zlib.error) as e:
        raise FormatError(f"cannot read ({e}); is the .gz file complete and valid?", path=str(path)) from None
    if rest:
        yield rest + b"\n"


class _FileSlice(NamedTuple):
    """Bytes ``[offset, offset + length)`` of a plain (not gzipped) input file: what a worker reads itself,
    instead of receiving the bytes through a pipe."""

    path: str
    offset: int
    length: int


def _load(data: "bytes | _FileSlice", fds: dict[str, int]) -> bytes:
    """The bytes of a chunk, reading a :class:`_FileSlice` from its file (``fds``: one open descriptor per
    file, kept by the caller)."""
    if isinstance(data, bytes):
        return data
    fd = fds.get(data.path)
    if fd is None:
        fd = fds[data.path] = os.open(data.path, os.O_RDONLY)
    out = os.pread(fd, data.length, data.offset)
    if len(out) != data.length:
        raise FormatError(f"the file shrank while it was being read (wanted {data.length} bytes at offset "
                          f"{data.offset}); do not change inputs during preprocessing", path=data.path)
    return out


#: newlines are counted in windows of this many bytes: numpy is ~5x faster than ``bytes.count``, and
#: small temporary arrays are reused from the heap where large fresh ones cost page faults
_WINDOW = 1 << 16


def _count_lines(data: bytes, start: int = 0) -> int:
    """Number of ``\\n`` in ``data[start:]``."""
    import numpy as np

    a = np.frombuffer(data, dtype=np.uint8)
    return sum(int(np.count_nonzero(a[i:i + _WINDOW] == 10)) for i in range(start, a.size, _WINDOW))


def _after_newlines(data: bytes, start: int, k: int) -> int:
    """The offset just after the ``k``-th newline (``k >= 1``) of ``data`` from ``start``, which has one."""
    import numpy as np

    a = np.frombuffer(data, dtype=np.uint8)
    for i in range(start, a.size, _WINDOW):
        newlines = np.flatnonzero(a[i:i + _WINDOW] == 10)
        if newlines.size >= k:
            return i + int(newlines[k - 1]) + 1
        k -= newlines.size
    raise AssertionError("fewer newlines than counted")  # pragma: no cover


class _LineTaker:
    """Hands out exactly ``n`` lines at a time from a file (for pairing target chunks with source ones)."""

    def __init__(self, f: BinaryIO, path: Path, chunk_bytes: int) -> None:
        self._chunks = _iter_chunks(f, path, chunk_bytes)
        self._parts: collections.deque = collections.deque()  # [chunk, its number of lines]
        self._start = 0      # bytes of the first part already handed out
        self._line = 0       # lines of the first part already handed out
        self._available = 0  # lines read and not handed out yet
        self.offset = 0      # offset in the (decompressed) file of the next line to hand out
        self.eof = False

    def take(self, n: int) -> tuple[bytes, int]:
        """Return the next ``n`` lines (fewer at the end of the file) and how many there are."""
        while self._available < n and not self.eof:
            nxt = next(self._chunks, None)
            if nxt is None:
                self.eof = True
            else:
                lines = _count_lines(nxt)
                self._parts.append((nxt, lines))
                self._available += lines
        pieces = []
        need = n
        while need and self._parts:
            part, lines = self._parts[0]
            left = lines - self._line
            if left <= need:
                pieces.append(part[self._start:] if self._start else part)
                self._parts.popleft()
                self._start = self._line = 0
                need -= left
                self._available -= left
            else:
                cut = _after_newlines(part, self._start, need)
                pieces.append(part[self._start:cut])
                self._start, self._line = cut, self._line + need
                self._available -= need
                need = 0
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self.offset += len(data)
        return data, n - need

    def count_rest(self) -> int:
        """Count the lines not taken yet (reads to the end)."""
        total = self._available + sum(_count_lines(chunk) for chunk in self._chunks)
        self._parts.clear()
        self._available = 0
        self.eof = True
        return total


def _check_line_counts(src_path: Path, src_lines: int, trg_path: Path, trg_lines: int, what: str = "train") -> None:
    if src_lines == trg_lines:
        return
    longer, shorter = (src_path, trg_path) if src_lines > trg_lines else (trg_path, src_path)
    raise InputError(f"the {what} source and target files must have the same number of lines: {src_path} has "
                     f"{src_lines:,} and {trg_path} has {trg_lines:,}; {longer} is longer by "
                     f"{abs(src_lines - trg_lines):,} line(s) than {shorter}. Fix the alignment of the corpus.")


def _aligned_chunks(src_path: Path, trg_path: Path, chunk_bytes: int, label: str,
                    report: Callable[[Callable[[], str]], None],
                    slices: bool = False) -> Iterator[tuple["bytes | _FileSlice", "bytes | _FileSlice"]]:
    """Yield ``(source chunk, target chunk)`` holding the same lines of both files.

    With ``slices``, a chunk of a plain (not gzipped) file is given as a :class:`_FileSlice` for the
    worker to read. Raises :class:`InputError` (with both exact line counts) when the files' line
    counts differ.
    """
    src_size, trg_size = src_path.stat().st_size, trg_path.stat().st_size
    total_bytes = max(src_size, 1)
    with _open_input(src_path, f"{label} source") as fs, _open_input(trg_path, f"{label} target") as ft:
        raw = fs.fileobj if isinstance(fs, gzip.GzipFile) else fs  # type: ignore[union-attr]
        src_plain = slices and not isinstance(fs, gzip.GzipFile)
        trg_plain = slices and not isinstance(ft, gzip.GzipFile)
        taker = _LineTaker(ft, trg_path, chunk_bytes)
        src_lines = paired = src_offset = 0
        chunks = _iter_chunks(fs, src_path, chunk_bytes)
        for src_chunk in chunks:
            n = _count_lines(src_chunk)
            src_lines += n
            trg_offset = taker.offset
            trg_chunk, got = taker.take(n)
            src_item: bytes | _FileSlice = src_chunk
            trg_item: bytes | _FileSlice = trg_chunk
            # (a last line without "\n" got one added: that chunk is not a slice of the file)
            if src_plain and src_offset + len(src_chunk) <= src_size:
                src_item = _FileSlice(str(src_path), src_offset, len(src_chunk))
            if trg_plain and trg_offset + len(trg_chunk) <= trg_size:
                trg_item = _FileSlice(str(trg_path), trg_offset, len(trg_chunk))
            src_offset += len(src_chunk)
            if got < n:  # the target ran out first
                src_lines += sum(_count_lines(chunk) for chunk in chunks)
                _check_line_counts(src_path, src_lines, trg_path, paired + got, label)
            paired += n
            report(lambda: f"reading {label} pairs: {paired:,} lines ({100 * min(raw.tell() / total_bytes, 1):.0f}%)")
            yield src_item, trg_item
        extra = taker.count_rest()
        if extra:
            _check_line_counts(src_path, src_lines, trg_path, src_lines + extra, label)
