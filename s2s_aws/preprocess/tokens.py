"""Tokenizing with numpy: no Python code runs per token or per line.

A chunk is normalized (see normalize_chunk), so tokens are the runs of bytes other than ASCII
whitespace. Each token of at most 15 bytes is packed, exactly, into two 64-bit words: its first 8
bytes, and its next 7 bytes plus its length in the top byte. A numpy open-addressing hash table maps
packed tokens to dense ids. The rare longer tokens go through a dict and enter the table as
(their index in that dict, a marker length of 255).
"""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

from ..contract.layout import UNK_ID
from .keytable import _LONG_LENGTH, _KeyTable, _np_consts

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__: list[str] = []

_MAX_PACKED = 15


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


class _TokenIndex(dict):
    """token -> dense id; a new token gets the next id (known tokens cost one C-level dict lookup)."""

    def __missing__(self, key: bytes) -> int:
        value = self[key] = len(self)
        return value




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
            ids = np.fromiter(map(vocab.get, new, itertools.repeat(UNK_ID)), dtype=np.int32, count=len(new))
            self.vocab_map = np.concatenate([self.vocab_map, ids])
        return self.vocab_map[local]
