"""The work done per chunk, in worker processes (or inline with one worker), and the per-process state
it keeps between tasks.

Pass 1 (:func:`_scan_pair`) tokenizes a pair of aligned chunks, counts tokens in this process's
tables and spills the local ids; the parent collects every process's tables (:func:`_flush_index`),
ranks, and sends back local id -> vocabulary id maps (:func:`_set_id_maps`); pass 2
(:func:`_encode_spilled`) maps the spilled ids and encodes the records. With known vocabularies
(:func:`_set_vocabs`) one pass (:func:`_encode_chunk`) does both. ``_flush_index``, ``_set_id_maps`` and
``_set_vocabs`` are broadcast: they run once on every worker (see :class:`.runner._Runner`).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional

from ..contract.layout import UNK_ID
from .chunks import _FileSlice, _load
from .normalize import _normalize
from .tokens import _SideIndex, _Table

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__: list[str] = []


class _WorkerState:
    """What one process keeps between tasks."""

    def __init__(self, barrier: Any = None) -> None:
        #: makes a broadcast task run once per worker (None: inline, in the caller's process)
        self.barrier = barrier
        #: pass 1: this process's token tables and counts, per side
        self.index: Optional[tuple[_SideIndex, _SideIndex]] = None
        #: pass 2: every process's local id -> vocabulary id maps, by pid
        self.id_maps: Optional[dict[int, tuple["np.ndarray", "np.ndarray"]]] = None
        #: one pass: the bytes-keyed vocabularies, and token tables whose ids map into them
        self.vocabs: Optional[tuple[dict[bytes, int], dict[bytes, int]]] = None
        self.encode_index: Optional[tuple[_SideIndex, _SideIndex]] = None
        #: open descriptors of the plain inputs this process reads slices of
        self.fds: dict[str, int] = {}

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


_STATE = _WorkerState()


def _reset_state(barrier: Any) -> None:
    """Start this process's state afresh (a worker's initializer, or inline before and after a run)."""
    global _STATE
    _STATE.close()
    _STATE = _WorkerState(barrier)


def _after_broadcast() -> None:
    barrier = _STATE.barrier
    if barrier is not None:  # hold this worker until every worker has taken its copy of the task
        barrier.wait(timeout=600)


def _set_vocabs(src_vocab: dict[bytes, int], trg_vocab: dict[bytes, int]) -> None:
    _STATE.vocabs = (src_vocab, trg_vocab)
    _STATE.encode_index = None  # its local id -> vocabulary id maps belong to the old vocabularies
    _after_broadcast()


def _flush_index() -> tuple[int, list["_Table"]]:
    """This worker's distinct tokens (by local id) and their counts, per side; resets the state."""
    indexes = _STATE.index or (_SideIndex(), _SideIndex())
    _STATE.index = None
    _after_broadcast()
    return os.getpid(), [index.export() for index in indexes]


def _set_id_maps(maps: dict[int, tuple["np.ndarray", "np.ndarray"]]) -> None:
    _STATE.id_maps = maps
    _after_broadcast()


def _scan_pair(src_chunk: "bytes | _FileSlice", trg_chunk: "bytes | _FileSlice", spill_path: str) -> int:
    """Pass 1: tokenize aligned chunks once, count tokens, spill local ids to disk; return this pid.

    Local ids index this worker's own token tables (:class:`_SideIndex`); pass 2 maps them to
    vocabulary ids with the tables of the worker that wrote the spill file.
    """
    import numpy as np

    indexes = _STATE.index = _STATE.index or (_SideIndex(), _SideIndex())
    with open(spill_path, "wb") as f:
        for index, chunk in zip(indexes, (src_chunk, trg_chunk)):
            local, lines = index.local_ids(_normalize(_load(chunk, _STATE.fds)))
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
    map_s, map_t = _STATE.id_maps[pid]
    return _emit(_encode_ids(map_s.take(local_s), len_s, map_t.take(local_t), len_t), out_path)


def _encode_chunk(src_chunk: "bytes | _FileSlice", trg_chunk: "bytes | _FileSlice",
                  out_path: Optional[str]) -> tuple["bytes | str", dict[str, int]]:
    """One pass with known vocabularies: encode aligned chunks of source and target lines."""
    vocabs = _STATE.vocabs
    indexes = _STATE.encode_index = _STATE.encode_index or (_SideIndex(), _SideIndex())
    arrays = []
    for index, vocab, chunk in zip(indexes, vocabs, (src_chunk, trg_chunk)):
        local, lines = index.local_ids(_normalize(_load(chunk, _STATE.fds)))
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

    from ..contract.records import encode_pairs_framed

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
        "source_unk": int(np.count_nonzero(s_ids == UNK_ID)),
        "target_unk": int(np.count_nonzero(t_ids == UNK_ID)),
        "max_source_len": int(s_len.max()) if s_len.size else 0,
        "max_target_len": int(t_len.max()) if t_len.size else 0,
    }
    return encode_pairs_framed(s_ids, s_len, t_ids, t_len), stats
