"""Turn a tokenized parallel corpus into the algorithm's four channel files.

A drop-in for the classic ``create_vocab_proto.py``: reads train (and validation) source/target text,
builds ``vocab.src.json`` / ``vocab.trg.json`` from the training files (or reuses given ones), and
writes ``train.rec`` / ``val.rec`` (RecordIO-protobuf, one Record per pair, in input order).

Rules (see CONTRACT.md, "Vocabulary"): lines are UTF-8 (undecodable bytes replaced by U+FFFD), split
on ``\\n``; tokens are split on whitespace exactly as ``str.split()`` does; ``.gz`` inputs (detected by
their magic bytes) are read transparently; a pair with a blank side is skipped and counted (its other
side still counts towards the vocabulary, which is built from the training *files*); unknown tokens
map to ``<unk>`` = 1. A source and target file with different line counts is an error.

How it works (no Python code runs per token or per line; see BENCHMARKS.md, "Preprocessing"): the
training pairs are cut into aligned chunks of whole lines (about 1 MiB of source text) and handed to
worker processes (with ``workers=1``, run inline); a worker reads a plain input's chunk itself by offset,
and hands encoded records back as a file that the parent appends with ``copy_file_range``, so no text
or records go through pipes.

- Pass 1 (per chunk): normalize the bytes (:func:`normalize_chunk`: invalid UTF-8 replaced, the
  non-ASCII whitespace of ``str.split`` turned into spaces, both only where present), find token
  boundaries and tokens per line with numpy, pack every token of up to 15 bytes exactly into two
  64-bit words, and map the words to dense local ids with a numpy open-addressing hash table
  (:class:`_KeyTable`; rarer longer tokens go through a dict). Counts come from ``numpy.bincount``;
  the local ids and line lengths are spilled to a temporary folder beside the outputs.
- The parent merges the workers' tables (numpy again), ranks the words (``numpy.lexsort`` on the packed
  words, which sort like the bytes) and sends each worker a local-id -> vocabulary-id array.
- Pass 2 (per chunk): one ``take`` maps the spilled ids, and
  :func:`s2s_aws.formats.records.encode_pairs_framed` builds the RecordIO/protobuf bytes of the whole
  chunk at once.

The parent writes results in input order; at most ``2 * workers`` chunks are in flight, so memory stays
flat whatever the corpus size (only the token tables grow, with the number of distinct tokens).
Validation pairs, and training pairs when both vocabularies are given, take one pass (tokens that are
new to a worker's table are looked up in the vocabulary once).

Example::

    from s2s_aws.preprocess import preprocess
    summary = preprocess("train.en", "train.ja", "dev.en", "dev.ja", output_dir="prep")
    print(summary.format())
"""
from __future__ import annotations

import collections
import gzip
import itertools
import logging
import multiprocessing
import os
import re
import shutil
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Iterator, NamedTuple, Optional

from .errors import FormatError, InputError
from .formats import vocab as vocab_mod
from .formats._files import create_temp_beside

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["preprocess", "PreprocessSummary", "OUTPUT_FILES", "DEFAULT_CHUNK_BYTES"]

logger = logging.getLogger(__name__)

#: the four files written into the output directory
OUTPUT_FILES = ("train.rec", "val.rec", "vocab.src.json", "vocab.trg.json")
#: bytes of whole lines per unit of work
DEFAULT_CHUNK_BYTES = 1 << 20

ProgressFn = Callable[[str], None]

# --------------------------------------------------------------------------------------------------
# text normalisation: make bytes.split() tokenize exactly like str.split() on the decoded text

#: the whitespace characters of str.split() outside ASCII's " \t\n\r\v\f" (tests check this list
#: against str.isspace over all of Unicode)
EXTRA_WHITESPACE = ("\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_ASCII_EXTRA = bytes.maketrans(b"\x1c\x1d\x1e\x1f", b"    ")
_MULTIBYTE_WS = [c.encode("utf-8") for c in EXTRA_WHITESPACE if ord(c) >= 0x80]
_MULTIBYTE_WS_RE = re.compile(b"|".join(re.escape(b) for b in _MULTIBYTE_WS))


def _has_multibyte_whitespace(chunk: bytes) -> bool:
    """Whether valid UTF-8 ``chunk`` holds a character of :data:`EXTRA_WHITESPACE` above U+007F.

    Exact, and vectorized (about 1 ns per byte, where substring probes cost ~5): U+0085 and U+00A0 are
    ``C2 85``/``C2 A0``, U+1680 is ``E1 9A 80``, U+2000..U+200A, U+2028, U+2029, U+202F are ``E2 80 xx``,
    U+205F is ``E2 81 9F`` and U+3000 is ``E3 80 80``.
    """
    import numpy as np

    a = np.frombuffer(chunk, dtype=np.uint8)
    if a.size < 2:
        return False
    if ((a[:-1] == 0xC2) & ((a[1:] == 0x85) | (a[1:] == 0xA0))).any():
        return True
    if a.size < 3:
        return False
    lead, second, third = a[:-2], a[1:-1], a[2:]
    x80 = a == 0x80
    found = (lead == 0xE3) & x80[1:-1] & x80[2:]
    found |= (lead == 0xE1) & (second == 0x9A) & x80[2:]
    found |= (lead == 0xE2) & (second == 0x81) & (third == 0x9F)
    found |= (lead == 0xE2) & x80[1:-1] & (((third - np.uint8(0x80)) <= 0x0A) | (third == 0xA8)
                                           | (third == 0xA9) | (third == 0xAF))
    return bool(found.any())


def normalize_chunk(chunk: bytes) -> bytes:
    """Return ``chunk`` as valid UTF-8 in which every whitespace character is ASCII whitespace.

    Undecodable bytes become U+FFFD (as ``errors="replace"`` decoding does); the non-ASCII whitespace
    of :data:`EXTRA_WHITESPACE` becomes a space, so ``bytes.split()`` gives the UTF-8 of the tokens
    that ``str.split()`` gives on the decoded text. (U+FFFD is not whitespace, so replacing bytes never
    moves a token boundary.)
    """
    return _normalize(chunk.translate(_ASCII_EXTRA))


def _normalize(chunk: bytes) -> bytes:
    """:func:`normalize_chunk` but leaving ``\\x1c``-``\\x1f`` alone (:func:`_token_bounds` treats them as
    whitespace: one pass over the bytes fewer)."""
    if chunk.isascii():
        return chunk
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        chunk = chunk.decode("utf-8", "replace").encode("utf-8")
    if _has_multibyte_whitespace(chunk):
        chunk = _MULTIBYTE_WS_RE.sub(b" ", chunk)
    return chunk


# --------------------------------------------------------------------------------------------------
# reading inputs


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


def _load(data: "bytes | _FileSlice") -> bytes:
    """The bytes of a chunk, reading a :class:`_FileSlice` from its file (one descriptor per file)."""
    if isinstance(data, bytes):
        return data
    fds = _STATE.setdefault("fds", {})
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


# --------------------------------------------------------------------------------------------------
# worker functions (run in worker processes, or inline with workers=1)

#: per-process state: the token tables and counts of the chunks this worker scanned, the id maps or
#: bytes-keyed vocabularies for encoding, and the barrier that makes a broadcast task run once per worker
_STATE: dict[str, Any] = {}


def _init_worker(barrier: Any) -> None:
    _STATE.clear()
    _STATE["barrier"] = barrier
    if barrier is not None:  # a worker process of ours (not the caller's process, with workers=1)
        _keep_freed_memory()


def _keep_freed_memory() -> None:
    """In a worker process: let glibc's malloc reuse freed memory instead of returning it to the system.

    Every chunk allocates the same few dozen numpy arrays of a few MiB; by default each one is a fresh
    ``mmap`` whose pages fault in again (about 20 % of the CPU time went to the kernel). Keeping freed
    blocks on the heap makes later chunks reuse them. Memory stays bounded by one chunk's working set.
    Does nothing where there is no glibc ``mallopt``.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # pragma: no cover - not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)   # blocks up to 32 MiB come from the heap (the glibc maximum)
    mallopt(m_trim_threshold, 256 << 20)  # and freed ones stay there for reuse


def _after_broadcast() -> None:
    barrier = _STATE.get("barrier")
    if barrier is not None:  # hold this worker until every worker has taken its copy of the task
        barrier.wait(timeout=600)


def _set_vocabs(src_vocab: dict[bytes, int], trg_vocab: dict[bytes, int]) -> None:
    _STATE["vocabs"] = (src_vocab, trg_vocab)
    _STATE.pop("encode_index", None)  # its local id -> vocabulary id maps belong to the old vocabularies
    _after_broadcast()


class _TokenIndex(dict):
    """token -> dense id; a new token gets the next id (known tokens cost one C-level dict lookup)."""

    def __missing__(self, key: bytes) -> int:
        value = self[key] = len(self)
        return value


# --------------------------------------------------------------------------------------------------
# tokenizing with numpy: no Python code runs per token or per line
#
# A chunk is normalized (see normalize_chunk), so tokens are the runs of bytes other than ASCII
# whitespace. Each token of at most 15 bytes is packed, exactly, into two 64-bit words: its first 8
# bytes, and its next 7 bytes plus its length in the top byte. A numpy open-addressing hash table maps
# packed tokens to dense ids. The rare longer tokens go through a dict and enter the table as
# (their index in that dict, a marker length of 255).

_MAX_PACKED = 15
_LONG_LENGTH = 0xFF
_NP: dict[str, Any] = {}  # numpy constants, built on first use (importing this module stays light)


def _np_consts() -> dict[str, Any]:
    if not _NP:
        import numpy as np

        _NP["low"] = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # first k bytes
        _NP["c1"], _NP["c2"] = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)
        _NP["long"] = np.uint64(_LONG_LENGTH << 56)
    return _NP


def _token_bounds(a: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
    """Start and end offsets of the tokens of a chunk (as uint8 array, see :func:`_normalize`) that ends
    in whitespace."""
    import numpy as np

    # \t \n \v \f \r, \x1c-\x1f and space: the ASCII characters str.split() splits on
    ws = ((a - np.uint8(9)) <= 4) | (a == 32) | ((a - np.uint8(0x1C)) <= 3)
    edges = np.flatnonzero(np.diff(ws, prepend=True))  # alternately a token's start and its end
    return edges[0::2], edges[1::2]


def _line_lengths(a: "np.ndarray", starts: "np.ndarray") -> "np.ndarray":
    """Number of tokens on each ``\\n``-terminated line, from the token start offsets."""
    import numpy as np

    newlines = np.flatnonzero(a == 10)
    return np.diff(np.searchsorted(starts, newlines), prepend=0)


def _words_at(words: "np.ndarray", offsets: "np.ndarray") -> "np.ndarray":
    """The 8 bytes at each (unaligned) byte offset, as little-endian words, from two aligned loads."""
    import numpy as np

    q = offsets >> 3
    r = (offsets & 7).astype(np.uint64)
    r <<= np.uint64(3)
    lo = words.take(q)
    q += 1
    hi = words.take(q)
    lo >>= r
    # (hi << 1) << (63 - r) is hi << (64 - r), and 0 for r == 0 (a shift by 64 would be undefined)
    hi <<= np.uint64(1)
    np.subtract(np.uint64(63), r, out=r)
    hi <<= r
    lo |= hi
    return lo


def _pack_tokens(chunk: bytes, starts: "np.ndarray", ends: "np.ndarray") -> tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
    """Pack every token into two words ``(k1, k2)``; return them and the indices of the longer tokens."""
    import numpy as np

    c = _np_consts()
    padded = np.zeros((len(chunk) + 31) // 8 * 8, dtype=np.uint8)
    padded[:len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
    words = padded.view("<u8")
    length = ends - starts
    k1 = _words_at(words, starts)
    k1 &= c["low"].take(np.minimum(length, 8))
    k2 = length.astype(np.uint64)
    k2 <<= np.uint64(56)
    over8 = np.flatnonzero(length > 8)
    if not over8.size:
        return k1, k2, over8
    rest = length[over8] - 8
    k2[over8] |= _words_at(words, starts[over8] + 8) & c["low"].take(np.minimum(rest, 8))
    return k1, k2, over8[rest > _MAX_PACKED - 8]


class _KeyTable:
    """Open-addressing hash table in numpy: distinct ``(k1, k2)`` word pairs -> dense ids 0, 1, 2, ...

    ``k2 == 0`` marks an empty slot (a packed token's ``k2`` holds its length, never 0). Lookups and
    insertions are done for a whole array of keys at once, in rounds: every key still unresolved looks
    at its current slot; a hit gives its id, an empty slot is claimed (one claimant per slot wins; the
    others, and duplicates of the winner, look again next round), an occupied slot sends it on to the
    next one (linear probing). The table doubles when half full.
    """

    #: grow (double) when more than this fraction of the slots is taken. Keys sitting away from their
    #: home slot cost extra rounds, but :meth:`rebuild` puts frequent tokens in their home slots, so a
    #: small table (fewer cache misses) wins
    max_load = 0.5

    def __init__(self, bits: int = 15) -> None:
        import numpy as np

        self.n = 0
        self.keys1 = np.zeros(1024, dtype=np.uint64)  # by id, for rehashing and for decoding tokens
        self.keys2 = np.zeros(1024, dtype=np.uint64)
        self._alloc(bits)

    def _alloc(self, bits: int) -> None:
        import numpy as np

        self.bits = bits
        self.mask = (1 << bits) - 1
        self.t1 = np.zeros(1 << bits, dtype=np.uint64)
        self.t2 = np.zeros(1 << bits, dtype=np.uint64)
        self.tid = np.zeros(1 << bits, dtype=np.int32)
        self.claim = np.zeros(1 << bits, dtype=np.int64)

    def _home(self, k1: "np.ndarray", k2: "np.ndarray") -> "np.ndarray":
        import numpy as np

        c = _np_consts()
        h = k1 * c["c1"]
        h ^= k2
        h *= c["c2"]
        h >>= np.uint64(64 - self.bits)
        return h.view(np.intp)  # < 2**bits: the same values

    def _append(self, k1: "np.ndarray", k2: "np.ndarray") -> "np.ndarray":
        import numpy as np

        first, stop = self.n, self.n + k1.size
        if stop > self.keys1.size:
            size = max(stop, 2 * self.keys1.size)
            self.keys1, self.keys2 = np.resize(self.keys1, size), np.resize(self.keys2, size)
        self.keys1[first:stop], self.keys2[first:stop] = k1, k2
        self.n = stop
        return np.arange(first, stop, dtype=np.int32)

    def _claim(self, slots: "np.ndarray", who: "np.ndarray") -> "np.ndarray":
        """Which of ``who`` won the (empty) ``slots`` they reached: one per slot."""
        self.claim[slots] = who
        return self.claim.take(slots) == who

    def _grow(self) -> None:
        bits = self.bits + 1
        while self.n > self.max_load * (1 << bits):
            bits += 1
        self._rebuild(bits)

    def rebuild(self, priority: "np.ndarray") -> None:
        """Insert the keys again, those with a higher ``priority`` (by id) first in line for their home
        slot: with counts as priorities, frequent tokens are found in one look."""
        import numpy as np

        self._rebuild(self.bits, np.argsort(priority[:self.n], kind="stable"))

    def _rebuild(self, bits: int, order: "np.ndarray | None" = None) -> None:
        import numpy as np

        self._alloc(bits)
        k1, k2 = self.keys1[:self.n], self.keys2[:self.n]
        # keys in increasing priority: of several keys claiming one slot, the last written wins
        ids = np.arange(self.n) if order is None else order
        h = self._home(k1.take(ids), k2.take(ids))
        while ids.size:  # distinct keys: every claim of an empty slot by a winner is final
            empty = np.flatnonzero(self.t2.take(h) == 0)
            won = empty[self._claim(h[empty], ids[empty])]
            slots, winners = h[won], ids[won]
            self.t1[slots], self.t2[slots], self.tid[slots] = k1[winners], k2[winners], winners
            rest = np.ones(ids.size, dtype=bool)
            rest[won] = False
            ids, h = ids[rest], (h[rest] + 1) & self.mask

    def ids(self, k1: "np.ndarray", k2: "np.ndarray") -> "np.ndarray":
        """The id of every key (int32), inserting the keys not seen before."""
        import numpy as np

        h = self._home(k1, k2)
        out = self.tid.take(h)
        t2 = self.t2.take(h)
        where = np.flatnonzero((t2 != k2) | (self.t1.take(h) != k1))  # most keys sit in their home slot
        h, k1, k2, t2 = h[where], k1[where], k2[where], t2[where]
        while where.size:
            empty = t2 == 0
            h = np.where(empty, h, (h + 1) & self.mask)  # occupied by another key: probe the next slot
            candidates = np.flatnonzero(empty)
            if candidates.size:
                won = candidates[self._claim(h[candidates], candidates)]
                slots = h[won]
                new = self._append(k1[won], k2[won])
                self.t1[slots], self.t2[slots], self.tid[slots] = k1[won], k2[won], new
                out[where[won]] = new
                rest = np.ones(where.size, dtype=bool)
                rest[won] = False
                where, h, k1, k2 = where[rest], h[rest], k1[rest], k2[rest]
            if self.n > self.max_load * (self.mask + 1):
                self._grow()
                h = self._home(k1, k2)
            t2 = self.t2.take(h)
            hit = (t2 == k2) & (self.t1.take(h) == k1)
            out[where[hit]] = self.tid.take(h[hit])
            miss = ~hit
            where, h, k1, k2, t2 = where[miss], h[miss], k1[miss], k2[miss], t2[miss]
        return out


class _Table(NamedTuple):
    """One process's distinct tokens of one side, by local id (what pass 1 sends to the parent)."""

    k1: "np.ndarray"
    k2: "np.ndarray"
    long: list[bytes]
    counts: "np.ndarray"


class _SideIndex:
    """One side's distinct tokens seen by this process: local ids, their counts, their bytes."""

    def __init__(self) -> None:
        import numpy as np

        self.table = _KeyTable()
        self.long = _TokenIndex()  # tokens longer than _MAX_PACKED bytes
        self.counts = np.zeros(0, dtype=np.int64)
        self.chunks = 0
        self.bits_seen = self.table.bits
        self.vocab_map = np.zeros(0, dtype=np.int32)  # local id -> vocabulary id (known vocabularies)

    def local_ids(self, chunk: bytes) -> tuple["np.ndarray", "np.ndarray"]:
        """Local ids of the tokens of a chunk (see :func:`_normalize`), and the number of tokens on each line."""
        import numpy as np

        a = np.frombuffer(chunk, dtype=np.uint8)
        starts, ends = _token_bounds(a)
        lines = _line_lengths(a, starts)
        k1, k2, long = _pack_tokens(chunk, starts, ends)
        if long.size:
            tokens = map(chunk.__getitem__, map(slice, starts[long].tolist(), ends[long].tolist()))
            k1[long] = np.fromiter(map(self.long.__getitem__, tokens), dtype=np.uint64, count=long.size)
            k2[long] = _np_consts()["long"]
        return self.table.ids(k1, k2), lines

    def count(self, ids: "np.ndarray") -> None:
        """Add a chunk's token counts; now and then, re-insert the keys most frequent first."""
        import numpy as np

        n = self.table.n
        if self.counts.size < n:
            self.counts = np.concatenate([self.counts, np.zeros(max(n, 2 * self.counts.size) - self.counts.size,
                                                                 dtype=np.int64)])
        self.counts[:n] += np.bincount(ids, minlength=n)
        self.chunks += 1
        if self.chunks in (1, 2, 4, 8, 16) or self.table.bits != self.bits_seen:  # early on, or grown
            self.table.rebuild(self.counts)
            self.bits_seen = self.table.bits

    def export(self) -> "_Table":
        """The distinct tokens (packed keys, by local id), the long ones, and the counts."""
        n = self.table.n
        return _Table(self.table.keys1[:n].copy(), self.table.keys2[:n].copy(), list(self.long),
                      self.counts[:n].copy())

    def merge(self, part: "_Table") -> "np.ndarray":
        """Add another process's tokens and counts; return their ids in this index (by their local id)."""
        import numpy as np

        k1 = part.k1.copy()
        long = np.flatnonzero(part.k2 == _np_consts()["long"])
        if long.size:  # long tokens are numbered per process: renumber them in this index
            k1[long] = np.fromiter(map(self.long.__getitem__, (part.long[i] for i in k1[long].tolist())),
                                   dtype=np.uint64, count=long.size)
        ids = self.table.ids(k1, part.k2)
        n = self.table.n
        if self.counts.size < n:
            self.counts = np.concatenate([self.counts, np.zeros(n - self.counts.size, dtype=np.int64)])
        self.counts[ids] += part.counts  # ids are distinct: one per distinct token of the part
        return ids

    def tokens(self, first: int = 0, ids: "np.ndarray | None" = None) -> list[bytes]:
        """The bytes of the tokens with local ids ``first``, ``first + 1``, ... (or ``ids``), in that order."""
        import numpy as np

        if ids is None:
            k1, k2 = self.table.keys1[first:self.table.n], self.table.keys2[first:self.table.n]
        else:
            k1, k2 = self.table.keys1.take(ids), self.table.keys2.take(ids)
        n = k1.size
        raw = np.empty((n, 16), dtype=np.uint8)
        raw[:, :8] = k1.astype("<u8").view(np.uint8).reshape(n, 8)
        raw[:, 8:] = k2.astype("<u8").view(np.uint8).reshape(n, 8)
        length = (k2 >> np.uint64(56)).astype(np.int64)
        offsets = np.arange(n, dtype=np.int64) * 16
        data = raw.tobytes()
        out = list(map(data.__getitem__, map(slice, offsets.tolist(), (offsets + np.minimum(length, 16)).tolist())))
        long = np.flatnonzero(length == _LONG_LENGTH)
        if long.size:
            by_index = list(self.long)  # dict order = insertion order = index
            for i, j in zip(long.tolist(), k1[long].tolist()):
                out[i] = by_index[j]
        return out

    def vocab_ids(self, local: "np.ndarray", vocab: dict[bytes, int]) -> "np.ndarray":
        """Map local ids to ids of ``vocab`` (unknown tokens: ``<unk>``), looking up only new tokens."""
        import numpy as np

        if self.vocab_map.size < self.table.n:
            new = self.tokens(self.vocab_map.size)
            ids = np.fromiter(map(vocab.get, new, itertools.repeat(vocab_mod.UNK_ID)), dtype=np.int32, count=len(new))
            self.vocab_map = np.concatenate([self.vocab_map, ids])
        return self.vocab_map[local]


def _flush_index() -> tuple[int, list["_Table"]]:
    """This worker's distinct tokens (by local id) and their counts, per side; resets the state."""
    indexes = _STATE.pop("index", None) or (_SideIndex(), _SideIndex())
    _after_broadcast()
    return os.getpid(), [index.export() for index in indexes]


def _set_id_maps(maps: dict[int, tuple["np.ndarray", "np.ndarray"]]) -> None:
    _STATE["id_maps"] = maps
    _after_broadcast()


def _scan_pair(src_chunk: "bytes | _FileSlice", trg_chunk: "bytes | _FileSlice", spill_path: str) -> int:
    """Pass 1: tokenize aligned chunks once, count tokens, spill local ids to disk; return this pid.

    Local ids index this worker's own token tables (:class:`_SideIndex`); pass 2 maps them to
    vocabulary ids with the tables of the worker that wrote the spill file.
    """
    import numpy as np

    indexes = _STATE.setdefault("index", (_SideIndex(), _SideIndex()))
    with open(spill_path, "wb") as f:
        for index, chunk in zip(indexes, (src_chunk, trg_chunk)):
            local, lines = index.local_ids(_normalize(_load(chunk)))
            index.count(local)
            np.save(f, local)
            np.save(f, lines.astype(np.int32))
    return os.getpid()


def _encode_spilled(spill_path: str, pid: int, out_path: Optional[str]) -> tuple["bytes | str", dict[str, int]]:
    """Pass 2: map a spilled chunk's local ids to vocabulary ids and encode its records (see :func:`_emit`)."""
    import numpy as np

    with open(spill_path, "rb") as f:
        local_s, len_s, local_t, len_t = (np.load(f) for _ in range(4))
    os.unlink(spill_path)
    map_s, map_t = _STATE["id_maps"][pid]
    return _emit(_encode_ids(map_s.take(local_s), len_s, map_t.take(local_t), len_t), out_path)


def _encode_chunk(src_chunk: "bytes | _FileSlice", trg_chunk: "bytes | _FileSlice",
                  out_path: Optional[str]) -> tuple["bytes | str", dict[str, int]]:
    """One pass with known vocabularies: encode aligned chunks of source and target lines."""
    vocabs = _STATE["vocabs"]
    indexes = _STATE.setdefault("encode_index", (_SideIndex(), _SideIndex()))
    arrays = []
    for index, vocab, chunk in zip(indexes, vocabs, (src_chunk, trg_chunk)):
        local, lines = index.local_ids(_normalize(_load(chunk)))
        arrays += [index.vocab_ids(local, vocab), lines]
    return _emit(_encode_ids(*arrays), out_path)


def _emit(result: tuple[bytes, dict[str, int]], out_path: Optional[str]) -> tuple["bytes | str", dict[str, int]]:
    """Hand encoded records to the parent: as bytes, or (from a worker process) written to ``out_path``,
    which the parent appends to the output with an in-kernel copy instead of reading it from a pipe."""
    data, stats = result
    if out_path is None:
        return data, stats
    with open(out_path, "wb") as f:
        f.write(data)
    return out_path, stats


def _without(ids: "np.ndarray", lengths: "np.ndarray", drop: "np.ndarray") -> "np.ndarray":
    """``ids`` (sequences of ``lengths`` back to back) without the sequences numbered ``drop``."""
    import numpy as np

    ends = np.cumsum(lengths)
    cut_from, cut_to = (ends - lengths)[drop].tolist(), ends[drop].tolist()
    keep_from, keep_to = [0] + cut_to, cut_from + [ids.size]
    return np.concatenate([ids[a:b] for a, b in zip(keep_from, keep_to) if b > a] or [ids[:0]])


def _encode_ids(s_ids: "np.ndarray", s_len: "np.ndarray", t_ids: "np.ndarray",
                t_len: "np.ndarray") -> tuple[bytes, dict[str, int]]:
    """Drop pairs with a blank side, encode the rest as RecordIO bytes; return them and counters."""
    import numpy as np

    from .formats.records import encode_pairs_framed

    keep = (s_len > 0) & (t_len > 0)
    if not keep.all():
        drop = np.flatnonzero(~keep)  # few: cut their tokens out by slicing, not with a mask per token
        s_ids, t_ids = _without(s_ids, s_len, drop), _without(t_ids, t_len, drop)
        s_len, t_len = s_len[keep], t_len[keep]
    stats = {
        "pairs": int(keep.sum()),
        "skipped": int(keep.size - keep.sum()),
        "source_tokens": int(s_ids.size),
        "target_tokens": int(t_ids.size),
        "source_unk": int(np.count_nonzero(s_ids == vocab_mod.UNK_ID)),
        "target_unk": int(np.count_nonzero(t_ids == vocab_mod.UNK_ID)),
        "max_source_len": int(s_len.max()) if s_len.size else 0,
        "max_target_len": int(t_len.max()) if t_len.size else 0,
    }
    return encode_pairs_framed(s_ids, s_len, t_ids, t_len), stats


# --------------------------------------------------------------------------------------------------
# running work in order with a bounded window


class _Runner:
    """Runs tasks inline (one worker) or in a process pool, yielding results in submission order."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = None
        if workers > 1:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() \
                and threading.active_count() == 1 else "spawn"
            ctx = multiprocessing.get_context(method)
            self._pool = ctx.Pool(workers, _init_worker, (ctx.Barrier(workers),))
        else:
            _init_worker(None)

    def map(self, fn: Callable, tasks: Iterable[tuple]) -> Iterator:
        """``fn(*args)`` for every task, in order; at most ``2 * workers`` tasks in flight."""
        if self._pool is None:
            for args in tasks:
                yield fn(*args)
            return
        window: collections.deque = collections.deque()
        for args in tasks:
            window.append(self._pool.apply_async(fn, args))
            if len(window) >= 2 * self.workers:
                yield window.popleft().get()
        while window:
            yield window.popleft().get()

    def broadcast(self, fn: Callable, *args: Any) -> list:
        """Run ``fn(*args)`` once on every worker (they must all be idle); return the results."""
        if self._pool is None:
            return [fn(*args)]
        pending = [self._pool.apply_async(fn, args) for _ in range(self.workers)]
        return [p.get() for p in pending]

    def close(self, *, ok: bool) -> None:
        if self._pool is None:
            _STATE.clear()
            return
        if ok:
            self._pool.close()
        else:
            self._pool.terminate()
        self._pool.join()
        self._pool = None


# --------------------------------------------------------------------------------------------------
# the public API


@dataclass
class SplitStats:
    """What was written for one split (train or validation)."""

    pairs: int = 0
    skipped: int = 0
    source_tokens: int = 0
    target_tokens: int = 0
    source_unk: int = 0
    target_unk: int = 0
    max_source_len: int = 0
    max_target_len: int = 0

    def add(self, other: dict[str, int]) -> None:
        for key, value in other.items():
            if key.startswith("max_"):
                setattr(self, key, max(getattr(self, key), value))
            else:
                setattr(self, key, getattr(self, key) + value)

    @property
    def source_unk_rate(self) -> float:
        return self.source_unk / self.source_tokens if self.source_tokens else 0.0

    @property
    def target_unk_rate(self) -> float:
        return self.target_unk / self.target_tokens if self.target_tokens else 0.0


@dataclass
class PreprocessSummary:
    """The result of :func:`preprocess`."""

    output_dir: str
    files: dict[str, str]
    source_vocab_size: int
    target_vocab_size: int
    train: SplitStats
    val: Optional[SplitStats]
    seconds: float
    workers: int
    vocab_reused: dict[str, bool] = field(default_factory=dict)

    @property
    def max_source_len(self) -> int:
        return max(self.train.max_source_len, self.val.max_source_len if self.val else 0)

    @property
    def max_target_len(self) -> int:
        return max(self.train.max_target_len, self.val.max_target_len if self.val else 0)

    def to_dict(self) -> dict:
        """A JSON-ready dict (for ``--json``)."""
        out = asdict(self)
        for name in ("train", "val"):
            stats = getattr(self, name)
            if stats is not None:
                out[name]["source_unk_rate"] = stats.source_unk_rate
                out[name]["target_unk_rate"] = stats.target_unk_rate
        out["max_source_len"] = self.max_source_len
        out["max_target_len"] = self.max_target_len
        return out

    def format(self) -> str:
        """A short human-readable report."""
        lines = [f"wrote {', '.join(Path(p).name for p in self.files.values())} to {self.output_dir} "
                 f"in {self.seconds:.1f}s ({self.workers} worker{'s' if self.workers != 1 else ''})"]
        for name, stats in (("train", self.train), ("val", self.val)):
            if stats is None:
                continue
            lines.append(f"{name}: {stats.pairs} pairs written, {stats.skipped} skipped (blank side); "
                         f"unknown tokens: source {100 * stats.source_unk_rate:.2f}%, "
                         f"target {100 * stats.target_unk_rate:.2f}%; longest source {stats.max_source_len}, "
                         f"longest target {stats.max_target_len} tokens")
        reused = {k for k, v in self.vocab_reused.items() if v}
        lines.append(f"vocabulary: source {self.source_vocab_size} entries"
                     f"{' (reused)' if 'source' in reused else ''}, target {self.target_vocab_size} entries"
                     f"{' (reused)' if 'target' in reused else ''}")
        return "\n".join(lines)


class _Progress:
    def __init__(self, fn: Optional[ProgressFn], interval: float = 2.0) -> None:
        self._fn = fn
        self._interval = interval
        self._last = time.monotonic()

    def __call__(self, message: Callable[[], str]) -> None:
        if self._fn is None:
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._fn(message())


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _default_workers() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def preprocess(
    train_source: str | os.PathLike,
    train_target: str | os.PathLike,
    val_source: str | os.PathLike | None = None,
    val_target: str | os.PathLike | None = None,
    *,
    output_dir: str | os.PathLike = ".",
    num_words_source: int = 50000,
    num_words_target: int = 50000,
    min_count_source: int = 1,
    min_count_target: int = 1,
    single_vocab: bool = False,
    vocab_source_json: str | os.PathLike | None = None,
    vocab_target_json: str | os.PathLike | None = None,
    workers: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Optional[ProgressFn] = None,
) -> PreprocessSummary:
    """Preprocess a parallel corpus into ``train.rec``, ``val.rec``, ``vocab.src.json``, ``vocab.trg.json``.

    ``val_source``/``val_target`` go together; without them no ``val.rec`` is written. With
    ``single_vocab`` one vocabulary is counted over both training files (``num_words_source`` and
    ``min_count_source`` apply) and written twice. ``vocab_*_json`` reuse existing vocabularies instead of
    building them (with ``single_vocab``, one given file serves both sides). ``workers`` defaults to the
    usable CPUs (at most 8). ``progress`` receives a status line every few seconds on long inputs.

    Every output is written to a temporary file and renamed into place only when all of them are
    complete, so a failure leaves the output directory as it was. Raises :class:`InputError` for bad
    arguments, missing files or mismatched line counts, :class:`FormatError` for unreadable inputs.
    """
    started = time.monotonic()
    _check_count("num_words_source", num_words_source, 0)
    _check_count("num_words_target", num_words_target, 0)
    _check_count("min_count_source", min_count_source, 1)
    _check_count("min_count_target", min_count_target, 1)
    _check_count("chunk_bytes", chunk_bytes, 1)
    workers = _default_workers() if workers is None else _check_count("workers", workers, 1)
    if (val_source is None) != (val_target is None):
        raise InputError("give both the validation source and target files (-vs and -vt), or neither")
    paths = {"train source": Path(train_source), "train target": Path(train_target)}
    if val_source is not None and val_target is not None:
        paths.update({"validation source": Path(val_source), "validation target": Path(val_target)})
    for what, path in paths.items():
        if not path.is_file():
            raise InputError(f"{what} file {path} does not exist or is not a file; check the path")
    out_dir = Path(output_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the output directory {out_dir} ({e.strerror}); choose another "
                         "--output-dir") from None
    if single_vocab and (vocab_source_json is None) != (vocab_target_json is None):
        vocab_source_json = vocab_target_json = vocab_source_json or vocab_target_json
    report = _Progress(progress)

    src_vocab = vocab_mod.load_vocab(vocab_source_json) if vocab_source_json is not None else None
    trg_vocab = vocab_mod.load_vocab(vocab_target_json) if vocab_target_json is not None else None
    count = (src_vocab is None or single_vocab and trg_vocab is None,
             trg_vocab is None or single_vocab and src_vocab is None)

    tmp_paths: list[Path] = []

    def tmp_for(name: str) -> Path:
        fd, tmp = create_temp_beside(out_dir / name)
        os.close(fd)
        tmp_paths.append(Path(tmp))
        return Path(tmp)

    ok = False
    spill_dir: str | None = None
    runner = _Runner(workers)
    # worker processes read plain inputs themselves and hand back records as files (no pipe copies)
    via_files = runner.workers > 1

    def out_file(i: int, label: str) -> Optional[str]:
        return os.path.join(spill_dir, f"{label}-{i}.rec") if via_files and spill_dir else None

    try:
        final: dict[str, tuple[Path, Path]] = {}
        tmp = tmp_for("train.rec")
        spill_dir = tempfile.mkdtemp(prefix=".s2s-preprocess-", dir=out_dir)
        train_pairs = _aligned_chunks(paths["train source"], paths["train target"], chunk_bytes, "train", report,
                                      slices=via_files)
        if any(count):
            # pass 1: tokenize once, count, spill local ids; build the vocabularies; pass 2: encode
            spills = []
            tasks = ((s, t, os.path.join(spill_dir, f"{i}.npy")) for i, (s, t) in enumerate(train_pairs))
            for i, pid in enumerate(runner.map(_scan_pair, tasks)):
                spills.append((os.path.join(spill_dir, f"{i}.npy"), pid, out_file(i, "train")))
            tables = runner.broadcast(_flush_index)
            # merge the workers' tables (numpy), rank, and map every worker's local ids to vocabulary ids
            merged = (_SideIndex(),) if single_vocab else (_SideIndex(), _SideIndex())
            global_ids = {pid: [merged[side % len(merged)].merge(table) for side, table in enumerate(parts)]
                          for pid, parts in tables}
            del tables
            to_vocab: list = [None, None]  # per side: merged id -> vocabulary id
            if single_vocab:
                src_vocab, to_vocab[0] = _rank(merged[0], num_words_source, min_count_source)
                trg_vocab, to_vocab[1] = src_vocab, to_vocab[0]
            else:
                if src_vocab is None:
                    src_vocab, to_vocab[0] = _rank(merged[0], num_words_source, min_count_source)
                if trg_vocab is None:
                    trg_vocab, to_vocab[1] = _rank(merged[1], num_words_target, min_count_target)
            for side, v in enumerate((src_vocab, trg_vocab)):
                if to_vocab[side] is None:  # a given vocabulary
                    to_vocab[side] = _vocab_ids(merged[side % len(merged)].tokens(), v)
            runner.broadcast(_set_id_maps, {pid: tuple(to_vocab[side].take(ids) for side, ids in enumerate(parts))
                                            for pid, parts in global_ids.items()})
            del merged, global_ids, to_vocab
            train = _write_records(runner.map(_encode_spilled, spills), tmp, report, "train")
        else:
            runner.broadcast(_set_vocabs, _bytes_keys(src_vocab), _bytes_keys(trg_vocab))
            tasks = ((s, t, out_file(i, "train")) for i, (s, t) in enumerate(train_pairs))
            train = _write_records(runner.map(_encode_chunk, tasks), tmp, report, "train")
        assert src_vocab is not None and trg_vocab is not None
        final["train"] = (tmp, out_dir / "train.rec")
        if train.pairs == 0:
            raise InputError(f"no usable training pairs: every line of {paths['train source']} or "
                             f"{paths['train target']} is blank ({train.skipped} skipped); check the files")
        val = None
        if "validation source" in paths:
            tmp = tmp_for("val.rec")
            if any(count):
                runner.broadcast(_set_vocabs, _bytes_keys(src_vocab), _bytes_keys(trg_vocab))
            val_pairs = _aligned_chunks(paths["validation source"], paths["validation target"], chunk_bytes,
                                        "validation", report, slices=via_files)
            tasks = ((s, t, out_file(i, "val")) for i, (s, t) in enumerate(val_pairs))
            val = _write_records(runner.map(_encode_chunk, tasks), tmp, report, "validation")
            final["val"] = (tmp, out_dir / "val.rec")
        for side, v in (("src", src_vocab), ("trg", trg_vocab)):
            tmp = tmp_for(f"vocab.{side}.json")
            vocab_mod.save_vocab(v, tmp)
            final[f"vocab_{side}"] = (tmp, out_dir / f"vocab.{side}.json")
        for tmp, target in final.values():
            os.replace(tmp, target)
        ok = True
    finally:
        runner.close(ok=ok)
        for tmp in tmp_paths:
            if tmp.exists():
                tmp.unlink()
        if spill_dir is not None:
            shutil.rmtree(spill_dir, ignore_errors=True)
    summary = PreprocessSummary(
        output_dir=str(out_dir), files={k: str(t) for k, (_, t) in final.items()},
        source_vocab_size=len(src_vocab), target_vocab_size=len(trg_vocab), train=train, val=val,
        seconds=round(time.monotonic() - started, 3), workers=workers,
        vocab_reused={"source": vocab_source_json is not None, "target": vocab_target_json is not None})
    logger.info("preprocess: %s", summary.format().replace("\n", "; "))
    return summary


def _rank(index: _SideIndex, num_words: int, min_count: int) -> tuple[dict[str, int], "np.ndarray"]:
    """The vocabulary rule of :func:`s2s_aws.formats.vocab.build_vocab` for the tokens of ``index`` and
    their counts: specials first, then words with count >= ``min_count`` by count descending, ties by
    the word descending (UTF-8 byte order is code-point order); the first ``num_words`` are kept.

    Returns the vocabulary and, for each token of ``index``, its id in it (int32; ``<unk>`` for the
    words left out). Only the kept words are turned into strings.
    """
    import numpy as np

    vocab_mod.build_vocab({}, num_words, min_count)  # the same argument checks
    n = index.table.n
    k1, k2, counts = index.table.keys1[:n], index.table.keys2[:n], index.counts[:n]
    ids = np.full(n, vocab_mod.UNK_ID, dtype=np.int32)
    keep = counts >= min_count
    specials = " ".join(vocab_mod.SPECIALS).encode() + b"\n"
    s_k1, s_k2, _ = _pack_tokens(specials, *_token_bounds(np.frombuffer(specials, dtype=np.uint8)))
    for special_id, (a, b) in enumerate(zip(s_k1.tolist(), s_k2.tolist())):
        found = np.flatnonzero((k1 == a) & (k2 == b))  # a corpus token spelled like a special
        keep[found], ids[found] = False, special_id    # keeps the special id
    words = np.flatnonzero(keep)
    length = k2.take(words) >> np.uint64(56)
    if (length == _LONG_LENGTH).any():  # tokens over 15 bytes: compare the bytes themselves
        tokens = index.tokens(ids=words)
        words = words[sorted(range(words.size), key=tokens.__getitem__, reverse=True)]
    else:
        # packed tokens sort like their bytes by (first 8 bytes big-endian, next 7 big-endian, length)
        low56 = np.uint64((1 << 56) - 1)
        words = words[np.lexsort((length, (k2.take(words) & low56).byteswap(), k1.take(words).byteswap()))[::-1]]
    order = words[np.argsort(-counts.take(words), kind="stable")][:num_words]
    first = len(vocab_mod.SPECIALS)
    ids[order] = np.arange(first, first + order.size, dtype=np.int32)
    v = {symbol: i for i, symbol in enumerate(vocab_mod.SPECIALS)}
    v.update(zip(map(bytes.decode, index.tokens(ids=order)), range(first, first + order.size)))
    return v, ids


def _vocab_ids(tokens: list[bytes], v: dict[str, int]) -> "np.ndarray":
    """The id in ``v`` of each token (``<unk>`` when missing), as int32."""
    import numpy as np

    table = _bytes_keys(v)
    return np.fromiter(map(table.get, tokens, itertools.repeat(vocab_mod.UNK_ID)), dtype=np.int32,
                       count=len(tokens))


def _bytes_keys(v: dict[str, int]) -> dict[bytes, int]:
    return dict(zip(map(str.encode, v), v.values()))


def _check_line_counts(src_path: Path, src_lines: int, trg_path: Path, trg_lines: int, what: str = "train") -> None:
    if src_lines == trg_lines:
        return
    longer, shorter = (src_path, trg_path) if src_lines > trg_lines else (trg_path, src_path)
    raise InputError(f"the {what} source and target files must have the same number of lines: {src_path} has "
                     f"{src_lines:,} and {trg_path} has {trg_lines:,}; {longer} is longer by "
                     f"{abs(src_lines - trg_lines):,} line(s) than {shorter}. Fix the alignment of the corpus.")


def _aligned_chunks(src_path: Path, trg_path: Path, chunk_bytes: int, label: str, report: _Progress,
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


def _append_file(out: BinaryIO, path: str) -> None:
    """Append the file ``path`` to ``out`` (in-kernel copy where the OS has one) and delete it."""
    with open(path, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        out.flush()
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(src.fileno(), out.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
        except (AttributeError, OSError):  # no copy_file_range (not Linux, some file systems)
            pass
        if copied < size:
            src.seek(copied)
            out.seek(0, os.SEEK_END)
            shutil.copyfileobj(src, out, 1 << 20)
        else:
            out.seek(0, os.SEEK_END)
    os.unlink(path)


def _write_records(results: Iterator[tuple["bytes | str", dict[str, int]]], out_path: Path, report: _Progress,
                   label: str) -> SplitStats:
    """Write encoded chunks (bytes, or files to append) in order to ``out_path``; return the split's counters."""
    stats = SplitStats()
    with open(out_path, "wb") as out:
        for data, chunk_stats in results:
            if isinstance(data, str):
                _append_file(out, data)
            else:
                out.write(data)
            stats.add(chunk_stats)
            report(lambda: f"writing {label} records: {stats.pairs:,} pairs")
    return stats
