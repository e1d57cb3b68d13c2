"""A numpy open-addressing hash table: distinct pairs of 64-bit words -> dense ids, a whole array of
keys at a time (see :class:`_KeyTable`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__: list[str] = []

#: the packed length that marks a token longer than 15 bytes (see :mod:`.tokens`)
_LONG_LENGTH = 0xFF
_NP: dict[str, Any] = {}  # numpy constants, built on first use (importing this module stays light)


def _np_consts() -> dict[str, Any]:
    if not _NP:
        import numpy as np

        _NP["low"] = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # first k bytes
        _NP["c1"], _NP["c2"] = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)
        _NP["long"] = np.uint64(_LONG_LENGTH << 56)
    return _NP


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
