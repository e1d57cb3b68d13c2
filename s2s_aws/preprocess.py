"""Turn a tokenized parallel corpus into the algorithm's four channel files.

A drop-in for the classic ``create_vocab_proto.py``: reads train (and validation) source/target text,
builds ``vocab.src.json`` / ``vocab.trg.json`` from the training files (or reuses given ones), and
writes ``train.rec`` / ``val.rec`` (RecordIO-protobuf, one Record per pair, in input order).

Rules (see CONTRACT.md, "Vocabulary"): lines are UTF-8 (undecodable bytes replaced by U+FFFD), split
on ``\\n``; tokens are split on whitespace exactly as ``str.split()`` does; ``.gz`` inputs (detected by
their magic bytes) are read transparently; a pair with a blank side is skipped and counted (its other
side still counts towards the vocabulary, which is built from the training *files*); unknown tokens
map to ``<unk>`` = 1. A source and target file with different line counts is an error.

How it works: the training pairs are read as aligned chunks of a few MiB of whole lines and handed
to worker processes (with ``workers=1``, run inline). Pass 1 tokenizes each chunk once, splitting
bytes (not str): every token becomes an id in the worker's own token table (one C-level dict lookup
per token), the counts come from ``numpy.bincount``, and the chunk's ids are spilled to a temporary
file beside the outputs. The tables are merged once to build the vocabularies. Pass 2 is numpy only:
it maps the spilled ids to vocabulary ids and builds the RecordIO/protobuf bytes of a whole chunk at
once (:func:`s2s_aws.formats.records.encode_pairs_framed`). The parent writes results in input
order; at most ``2 * workers`` chunks are in flight, so memory stays flat whatever the corpus size
(only the token tables grow, with the number of distinct tokens). Validation pairs, and training
pairs when both vocabularies are given, take one pass with the vocabularies' dicts.

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
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Iterator, Optional

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
# cheap substring checks that find every multi-byte whitespace (U+2000..U+200A, U+2028, U+2029, U+202F
# share the prefix E2 80); the regex runs only on chunks where one of them occurs
_MULTIBYTE_PROBES = sorted({b if not b.startswith(b"\xe2\x80") else b"\xe2\x80" for b in _MULTIBYTE_WS})


def normalize_chunk(chunk: bytes) -> bytes:
    """Return ``chunk`` as valid UTF-8 in which every whitespace character is ASCII whitespace.

    Undecodable bytes become U+FFFD (as ``errors="replace"`` decoding does); the non-ASCII whitespace
    of :data:`EXTRA_WHITESPACE` becomes a space, so ``bytes.split()`` gives the UTF-8 of the tokens
    that ``str.split()`` gives on the decoded text.
    """
    chunk = chunk.translate(_ASCII_EXTRA)
    if chunk.isascii():
        return chunk
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        chunk = chunk.decode("utf-8", "replace").encode("utf-8")
    if any(probe in chunk for probe in _MULTIBYTE_PROBES):
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


class _LineTaker:
    """Hands out exactly ``n`` lines at a time from a file (for pairing target chunks with source ones)."""

    def __init__(self, f: BinaryIO, path: Path, chunk_bytes: int) -> None:
        self._chunks = _iter_chunks(f, path, chunk_bytes)
        self._buf = b""
        self.eof = False

    def take(self, n: int) -> bytes:
        """Return the next ``n`` lines (fewer at the end of the file)."""
        import numpy as np

        while self._buf.count(b"\n") < n and not self.eof:
            nxt = next(self._chunks, None)
            if nxt is None:
                self.eof = True
            else:
                self._buf += nxt
        newlines = np.flatnonzero(np.frombuffer(self._buf, dtype=np.uint8) == 10)
        if len(newlines) <= n:
            out, self._buf = self._buf, b""
            return out
        cut = int(newlines[n - 1]) + 1 if n else 0
        out, self._buf = self._buf[:cut], self._buf[cut:]
        return out

    def count_rest(self) -> int:
        """Count the lines not taken yet (reads to the end)."""
        total = self._buf.count(b"\n")
        self._buf = b""
        for chunk in self._chunks:
            total += chunk.count(b"\n")
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


def _after_broadcast() -> None:
    barrier = _STATE.get("barrier")
    if barrier is not None:  # hold this worker until every worker has taken its copy of the task
        barrier.wait(timeout=600)


def _set_vocabs(src_vocab: dict[bytes, int], trg_vocab: dict[bytes, int]) -> None:
    _STATE["vocabs"] = (src_vocab, trg_vocab)
    _after_broadcast()


class _TokenIndex(dict):
    """token -> dense id; a new token gets the next id (known tokens cost one C-level dict lookup)."""

    def __missing__(self, key: bytes) -> int:
        value = self[key] = len(self)
        return value


def _flush_index() -> tuple[int, list[tuple[list[bytes], "np.ndarray"]]]:
    """This worker's distinct tokens (by local id) and their counts, per side; resets the state."""
    import numpy as np

    indexes = _STATE.pop("index", None) or (_TokenIndex(), _TokenIndex())
    counts = _STATE.pop("counts", None) or [np.zeros(0, np.int64), np.zeros(0, np.int64)]
    _after_broadcast()
    return os.getpid(), [(list(index), c[:len(index)]) for index, c in zip(indexes, counts)]


def _set_id_maps(maps: dict[int, tuple["np.ndarray", "np.ndarray"]]) -> None:
    _STATE["id_maps"] = maps
    _after_broadcast()


_WS_TABLE = None


def _tokens_per_line(chunk: bytes) -> "np.ndarray":
    """Number of whitespace-separated tokens on each line of a chunk that ends with ``\\n``."""
    import numpy as np

    global _WS_TABLE
    if _WS_TABLE is None:
        table = np.zeros(256, dtype=bool)
        table[list(b" \t\n\r\x0b\x0c")] = True
        _WS_TABLE = table
    a = np.frombuffer(chunk, dtype=np.uint8)
    ws = _WS_TABLE[a]
    starts = ~ws
    starts[1:] &= ws[:-1]
    newlines = np.flatnonzero(a == 10)
    line_of_token = np.searchsorted(newlines, np.flatnonzero(starts))
    return np.bincount(line_of_token, minlength=len(newlines))


def _scan_pair(src_chunk: bytes, trg_chunk: bytes, spill_path: str) -> int:
    """Pass 1: tokenize aligned chunks once, count tokens, spill local ids to disk; return this pid.

    Local ids index this worker's own token table (:class:`_TokenIndex`); pass 2 maps them to
    vocabulary ids with the table of the worker that wrote the spill file.
    """
    import numpy as np

    indexes = _STATE.setdefault("index", (_TokenIndex(), _TokenIndex()))
    counts = _STATE.setdefault("counts", [np.zeros(0, np.int64), np.zeros(0, np.int64)])
    with open(spill_path, "wb") as f:
        for side, chunk in enumerate((src_chunk, trg_chunk)):
            chunk = normalize_chunk(chunk)
            tokens = chunk.split()
            index = indexes[side]
            local = np.fromiter(map(index.__getitem__, tokens), dtype=np.int32, count=len(tokens))
            if len(counts[side]) < len(index):
                grown = np.zeros(max(len(index), 2 * len(counts[side])), np.int64)
                grown[:len(counts[side])] = counts[side]
                counts[side] = grown
            counts[side][:len(index)] += np.bincount(local, minlength=len(index))
            np.save(f, local)
            np.save(f, _tokens_per_line(chunk).astype(np.int32))
    return os.getpid()


def _encode_spilled(spill_path: str, pid: int) -> tuple[bytes, dict[str, int]]:
    """Pass 2: map a spilled chunk's local ids to vocabulary ids and encode its records."""
    import numpy as np

    with open(spill_path, "rb") as f:
        local_s, len_s, local_t, len_t = (np.load(f) for _ in range(4))
    os.unlink(spill_path)
    map_s, map_t = _STATE["id_maps"][pid]
    return _encode_ids(map_s[local_s], len_s, map_t[local_t], len_t)


def _ids(chunk: bytes, table: dict[bytes, int]) -> "np.ndarray":
    import numpy as np

    tokens = chunk.split()
    return np.fromiter(map(table.get, tokens, itertools.repeat(vocab_mod.UNK_ID)), dtype=np.int64,
                       count=len(tokens))


def _encode_chunk(src_chunk: bytes, trg_chunk: bytes) -> tuple[bytes, dict[str, int]]:
    """One pass with known vocabularies: encode aligned chunks of source and target lines."""
    src_chunk, trg_chunk = normalize_chunk(src_chunk), normalize_chunk(trg_chunk)
    src_vocab, trg_vocab = _STATE["vocabs"]
    return _encode_ids(_ids(src_chunk, src_vocab), _tokens_per_line(src_chunk),
                       _ids(trg_chunk, trg_vocab), _tokens_per_line(trg_chunk))


def _encode_ids(s_ids: "np.ndarray", s_len: "np.ndarray", t_ids: "np.ndarray",
                t_len: "np.ndarray") -> tuple[bytes, dict[str, int]]:
    """Drop pairs with a blank side, encode the rest as RecordIO bytes; return them and counters."""
    import numpy as np

    from .formats.records import encode_pairs_framed

    keep = (s_len > 0) & (t_len > 0)
    if not keep.all():
        s_ids, t_ids = s_ids[np.repeat(keep, s_len)], t_ids[np.repeat(keep, t_len)]
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
    try:
        final: dict[str, tuple[Path, Path]] = {}
        tmp = tmp_for("train.rec")
        train_pairs = _aligned_chunks(paths["train source"], paths["train target"], chunk_bytes, "train", report)
        if any(count):
            # pass 1: tokenize once, count, spill local ids; build the vocabularies; pass 2: encode
            spill_dir = tempfile.mkdtemp(prefix=".s2s-preprocess-", dir=out_dir)
            spills = []
            tasks = ((s, t, os.path.join(spill_dir, f"{i}.npy")) for i, (s, t) in enumerate(train_pairs))
            for i, pid in enumerate(runner.map(_scan_pair, tasks)):
                spills.append((os.path.join(spill_dir, f"{i}.npy"), pid))
            tables = runner.broadcast(_flush_index)
            src_counts: collections.Counter = collections.Counter()
            trg_counts: collections.Counter = collections.Counter()
            for _, ((s_keys, s_n), (t_keys, t_n)) in tables:
                src_counts.update(dict(zip(s_keys, s_n.tolist())))
                trg_counts.update(dict(zip(t_keys, t_n.tolist())))
            if single_vocab:
                src_counts.update(trg_counts)
                shared = vocab_mod.build_vocab_bytes(src_counts, num_words_source, min_count_source)
                src_vocab, trg_vocab = src_vocab or shared, trg_vocab or shared
            else:
                if src_vocab is None:
                    src_vocab = vocab_mod.build_vocab_bytes(src_counts, num_words_source, min_count_source)
                if trg_vocab is None:
                    trg_vocab = vocab_mod.build_vocab_bytes(trg_counts, num_words_target, min_count_target)
            del src_counts, trg_counts
            sv, tv = _bytes_keys(src_vocab), _bytes_keys(trg_vocab)
            runner.broadcast(_set_id_maps, {pid: (_id_map(s_keys, sv), _id_map(t_keys, tv))
                                            for pid, ((s_keys, _), (t_keys, _)) in tables})
            del tables
            train = _write_records(runner.map(_encode_spilled, spills), tmp, report, "train")
        else:
            runner.broadcast(_set_vocabs, _bytes_keys(src_vocab), _bytes_keys(trg_vocab))
            train = _write_records(runner.map(_encode_chunk, train_pairs), tmp, report, "train")
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
                                        "validation", report)
            val = _write_records(runner.map(_encode_chunk, val_pairs), tmp, report, "validation")
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


def _id_map(keys: list[bytes], v: dict[bytes, int]) -> "np.ndarray":
    import numpy as np

    return np.fromiter(map(v.get, keys, itertools.repeat(vocab_mod.UNK_ID)), dtype=np.int64, count=len(keys))


def _bytes_keys(v: dict[str, int]) -> dict[bytes, int]:
    return dict(zip(map(str.encode, v), v.values()))


def _check_line_counts(src_path: Path, src_lines: int, trg_path: Path, trg_lines: int, what: str = "train") -> None:
    if src_lines == trg_lines:
        return
    longer, shorter = (src_path, trg_path) if src_lines > trg_lines else (trg_path, src_path)
    raise InputError(f"the {what} source and target files must have the same number of lines: {src_path} has "
                     f"{src_lines:,} and {trg_path} has {trg_lines:,}; {longer} is longer by "
                     f"{abs(src_lines - trg_lines):,} line(s) than {shorter}. Fix the alignment of the corpus.")


def _aligned_chunks(src_path: Path, trg_path: Path, chunk_bytes: int, label: str,
                    report: _Progress) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(source chunk, target chunk)`` holding the same lines of both files.

    Raises :class:`InputError` (with both exact line counts) when the files' line counts differ.
    """
    total_bytes = max(src_path.stat().st_size, 1)
    with _open_input(src_path, f"{label} source") as fs, _open_input(trg_path, f"{label} target") as ft:
        raw = fs.fileobj if isinstance(fs, gzip.GzipFile) else fs  # type: ignore[union-attr]
        taker = _LineTaker(ft, trg_path, chunk_bytes)
        src_lines = paired = 0
        chunks = _iter_chunks(fs, src_path, chunk_bytes)
        for src_chunk in chunks:
            n = src_chunk.count(b"\n")
            src_lines += n
            trg_chunk = taker.take(n)
            got = trg_chunk.count(b"\n")
            if got < n:  # the target ran out first
                src_lines += sum(chunk.count(b"\n") for chunk in chunks)
                _check_line_counts(src_path, src_lines, trg_path, paired + got, label)
            paired += n
            report(lambda: f"reading {label} pairs: {paired:,} lines ({100 * min(raw.tell() / total_bytes, 1):.0f}%)")
            yield src_chunk, trg_chunk
        extra = taker.count_rest()
        if extra:
            _check_line_counts(src_path, src_lines, trg_path, src_lines + extra, label)


def _write_records(results: Iterator[tuple[bytes, dict[str, int]]], out_path: Path, report: _Progress,
                   label: str) -> SplitStats:
    """Write encoded chunks in order to ``out_path``; return the split's counters."""
    stats = SplitStats()
    with open(out_path, "wb") as out:
        for data, chunk_stats in results:
            out.write(data)
            stats.add(chunk_stats)
            report(lambda: f"writing {label} records: {stats.pairs:,} pairs")
    return stats
