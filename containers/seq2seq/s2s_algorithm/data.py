"""Training data: the three channels, id validation, truncation, length bucketing, padded batches.

Batches are a deterministic function of ``(seed, epoch)``, so a resumed job replays exactly the same
order and can skip to its saved position; with several processes, process ``rank`` takes every
``world_size``-th batch.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from s2s_aws.contract.layout import BOS_ID, CHANNELS, EOS_ID, PAD_ID, UNK_ID, VOCAB_FILES
from s2s_aws.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["ParallelData", "Batch", "BatchSampler", "load_vocabularies", "load_channel", "make_batch",
           "CHANNELS", "PAD_ID", "BOS_ID", "EOS_ID"]



@dataclass
class ParallelData:
    """Token-id pairs (truncated, without ``<s>``/``</s>``)."""

    sources: list[np.ndarray]
    targets: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.sources)

    def source_lengths(self) -> np.ndarray:
        return np.fromiter((len(s) for s in self.sources), dtype=np.int64, count=len(self.sources))

    def target_lengths(self) -> np.ndarray:
        return np.fromiter((len(t) for t in self.targets), dtype=np.int64, count=len(self.targets))

    def subset(self, n: int) -> "ParallelData":
        return ParallelData(self.sources[:n], self.targets[:n])


@dataclass
class Batch:
    """A padded batch. ``trg_in`` = ``<s>`` + target, ``trg_out`` = target + ``</s>``."""

    src: torch.Tensor
    src_lengths: torch.Tensor
    trg_in: torch.Tensor
    trg_out: torch.Tensor
    num_tokens: int          # target tokens including </s>

    def to(self, device: torch.device) -> "Batch":
        nb = device.type == "cuda"
        return Batch(self.src.to(device, non_blocking=nb), self.src_lengths.to(device, non_blocking=nb),
                     self.trg_in.to(device, non_blocking=nb), self.trg_out.to(device, non_blocking=nb),
                     self.num_tokens)


def load_vocabularies(folder: Path) -> tuple[dict[str, int], dict[str, int]]:
    """``vocab.src.json`` and ``vocab.trg.json`` from the vocab channel (InputError names a missing one)."""
    from s2s_aws.contract import vocab as vocab_format

    out = []
    for name in VOCAB_FILES:
        path = folder / name
        if not path.is_file():
            present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
            raise InputError(
                f"The vocab channel ({folder}) has no {name} (it holds: {', '.join(present) or 'nothing'}). "
                "Upload both vocab.src.json and vocab.trg.json, as written by s2s-aws preprocess, "
                "to the vocab channel.")
        out.append(vocab_format.load_vocab(path))
    return out[0], out[1]


def _channel_files(folder: Path, channel: str) -> list[Path]:
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise InputError(
            f"The {channel} channel ({folder}) holds no files. Upload one or more RecordIO-protobuf "
            f"files (e.g. {'train.rec' if channel == 'train' else 'val.rec'}) to it, as written by "
            "s2s-aws preprocess.")
    return files


def _check_ids(ids: np.ndarray, size: int, side: str, path: Path, record: int) -> None:
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= size):
        bad = int(ids.max()) if int(ids.max()) >= size else int(ids.min())
        raise InputError(
            f"{path}: record {record} (0-based) has {side} token id {bad}, outside the {side} "
            f"vocabulary (vocab.{'src' if side == 'source' else 'trg'}.json has {size} entries, "
            f"ids 0..{size - 1}). The data and the vocabulary do not belong together: upload the "
            "vocabulary files that were written together with this data.")


def load_channel(folder: Path, channel: str, *, src_vocab_size: int, trg_vocab_size: int,
                 max_seq_len_source: int, max_seq_len_target: int) -> ParallelData:
    """Read every RecordIO file in a channel folder; validate ids; truncate to the maximum lengths."""
    from s2s_aws.contract import records, recordio

    sources: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for path in _channel_files(folder, channel):
        for number, payload in enumerate(recordio.iter_records(path)):
            src, trg = records.decode_pair(payload, name=f"{path}, record {number} (0-based)")
            s = np.asarray(src, dtype=np.int64)
            t = np.asarray(trg, dtype=np.int64)
            _check_ids(s, src_vocab_size, "source", path, number)
            _check_ids(t, trg_vocab_size, "target", path, number)
            sources.append(s[:max_seq_len_source].astype(np.int32))
            targets.append(t[:max_seq_len_target].astype(np.int32))
    if not sources:
        raise InputError(f"The {channel} channel ({folder}) holds RecordIO files but no records. "
                         "Upload non-empty data written by s2s-aws preprocess.")
    logger.info("%s: %d pairs from %s", channel, len(sources), folder)
    return ParallelData(sources, targets)


def make_batch(data: ParallelData, indices: np.ndarray | list[int]) -> Batch:
    """Pad the pairs ``indices`` into tensors."""
    srcs = [data.sources[i] for i in indices]
    trgs = [data.targets[i] for i in indices]
    n = len(srcs)
    src_len = np.array([len(s) + 1 for s in srcs], dtype=np.int64)
    trg_len = np.array([len(t) + 1 for t in trgs], dtype=np.int64)
    src = np.zeros((n, int(src_len.max())), dtype=np.int64)
    trg_in = np.zeros((n, int(trg_len.max())), dtype=np.int64)
    trg_out = np.zeros_like(trg_in)
    for row, (s, t) in enumerate(zip(srcs, trgs)):
        src[row, :len(s)] = s
        src[row, len(s)] = EOS_ID
        trg_in[row, 0] = BOS_ID
        trg_in[row, 1:len(t) + 1] = t
        trg_out[row, :len(t)] = t
        trg_out[row, len(t)] = EOS_ID
    return Batch(torch.from_numpy(src), torch.from_numpy(src_len), torch.from_numpy(trg_in),
                 torch.from_numpy(trg_out), int(trg_len.sum()))


class BatchSampler:
    """The batches of one epoch, as index arrays; deterministic in ``(seed, epoch)``.

    With bucketing, pairs are grouped by target length bucket (``bucket_width``), ordered by target
    then source length inside it, and cut into batches of ``batch_size`` sentences that never cross a
    bucket; the batch order is shuffled.
    Without, the pairs are shuffled and cut in order.
    """

    def __init__(self, data: ParallelData, batch_size: int, *, bucket_width: int = 10,
                 bucketing: bool = True, seed: int = 1, world_size: int = 1, rank: int = 0):
        self.batch_size = int(batch_size)
        self.bucket_width = max(1, int(bucket_width))
        self.bucketing = bucketing
        self.seed = int(seed)
        self.world_size = max(1, int(world_size))
        self.rank = int(rank)
        self._src_len = data.source_lengths()
        self._trg_len = data.target_lengths()
        self._trg_bucket = (self._trg_len + 1 + self.bucket_width - 1) // self.bucket_width
        self.size = len(data)
        #: when set, every epoch yields exactly this many batches (processes whose data differ in
        #: size, e.g. ShardedByS3Key, must still take the same number of steps under DDP)
        self.limit: int | None = None

    def _all_batches(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, int(epoch)])
        perm = rng.permutation(self.size)
        if not self.bucketing:
            return [perm[i:i + self.batch_size] for i in range(0, self.size, self.batch_size)]
        # inside a bucket, neighbours have (nearly) the same lengths: little padding; ties keep the
        # random order, so the batches' composition still changes from epoch to epoch
        order = perm[np.lexsort((self._src_len[perm], self._trg_len[perm], self._trg_bucket[perm]))]
        buckets = self._trg_bucket[order]
        batches: list[np.ndarray] = []
        starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for a, b in zip(starts, ends):
            batches.extend(order[i:min(i + self.batch_size, b)] for i in range(a, b, self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def epoch(self, epoch: int) -> list[np.ndarray]:
        """This process's batches for ``epoch`` (every process gets the same number)."""
        batches = self._all_batches(epoch)
        per_rank = max(1, len(batches) // self.world_size)
        if self.limit is not None:
            per_rank = min(per_rank, max(1, int(self.limit)))
        return [batches[(i * self.world_size + self.rank) % len(batches)] for i in range(per_rank)]

    def __len__(self) -> int:
        return len(self.epoch(0))


def iter_eval_batches(data: ParallelData, batch_size: int) -> Iterator[Batch]:
    """Length-sorted batches over a whole set (validation)."""
    order = np.argsort(data.target_lengths(), kind="stable")
    for i in range(0, len(order), batch_size):
        yield make_batch(data, order[i:i + batch_size])


def read_json(path: Path, what: str) -> dict:
    """A JSON object from the config folder; InputError says which file is broken."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} file {path} is missing. SageMaker writes it; outside SageMaker, "
                         f"create it (a JSON object).") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{what} file {path} is not valid JSON ({e}). Write a JSON object.") from e
    except RecursionError:   # json.loads recurses once per nesting level
        raise InputError(f"{what} file {path} is nested too deeply to read (thousands of levels). "
                         "Write a flat JSON object.") from None
    if not isinstance(value, dict):
        raise InputError(f"{what} file {path} must hold a JSON object, got {type(value).__name__}.")
    return value
