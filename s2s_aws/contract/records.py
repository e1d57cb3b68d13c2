"""Training pairs and id sequences as ``aialgs.data.Record`` payloads.

A training pair is one Record with ``features["source"].int32_tensor.values`` and
``features["target"].int32_tensor.values``: dense token ids without BOS/EOS.

Encoding builds the protobuf wire bytes directly (the layout of a Record holding int32 tensors is
small and fixed), which is much faster than one message object per pair and gives the same bytes as
``Record.SerializeToString(deterministic=True)`` (map entries sorted by key). Decoding uses the real
protobuf parser, so any valid Record is accepted whatever wrote it.

Example::

    from s2s_aws.contract import records
    payload = records.encode_pair([4, 5, 6], [7, 8])
    assert records.decode_pair(payload) == ([4, 5, 6], [7, 8])
    records.write_pairs("train.rec", [([4, 5], [6])])
    assert list(records.read_pairs("train.rec")) == [([4, 5], [6])]
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from ..errors import FormatError, InputError
from . import recordio

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "SOURCE", "TARGET", "encode_pair", "decode_pair", "encode_ids", "decode_ids", "decode_features",
    "read_pairs", "write_pairs", "encode_pairs_framed", "PairArrays", "read_pair_arrays",
]

logger = logging.getLogger(__name__)

SOURCE = "source"
TARGET = "target"

_MASK64 = (1 << 64) - 1
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_SMALL_VARINTS: list[bytes] = []  # varint bytes of 0..16383, built on first use


def _varint(value: int) -> bytes:
    value &= _MASK64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _small_varints() -> list[bytes]:
    if not _SMALL_VARINTS:
        _SMALL_VARINTS.extend(_varint(i) for i in range(1 << 14))
    return _SMALL_VARINTS


def _packed_int32(ids: Sequence[int]) -> bytes:
    small = _small_varints()
    parts = []
    for raw in ids:
        i = int(raw)
        if 0 <= i < 16384:
            parts.append(small[i])
        elif _INT32_MIN <= i <= _INT32_MAX:
            parts.append(_varint(i))  # negative int32 -> 10-byte two's complement, as protobuf does
        else:
            raise InputError(f"id {i} does not fit an int32 tensor value; token ids must be in "
                             f"[{_INT32_MIN}, {_INT32_MAX}]")
    return b"".join(parts)


def _feature_entry(key: str, ids: Sequence[int]) -> bytes:
    packed = _packed_int32(ids)
    tensor = b"\x0a" + _varint(len(packed)) + packed if packed else b""     # Int32Tensor.values (1)
    value = b"\x3a" + _varint(len(tensor)) + tensor                          # Value.int32_tensor (7)
    k = key.encode("utf-8")
    entry = b"\x0a" + _varint(len(k)) + k + b"\x12" + _varint(len(value)) + value  # key (1), value (2)
    return b"\x0a" + _varint(len(entry)) + entry                             # Record.features (1)


def encode_ids(key: str, ids: Sequence[int]) -> bytes:
    """Return a Record payload with ``features[key].int32_tensor.values = ids``."""
    return _feature_entry(key, ids)


def encode_pair(source: Sequence[int], target: Sequence[int]) -> bytes:
    """Return the Record payload of one training pair (same bytes as deterministic protobuf)."""
    return _feature_entry(SOURCE, source) + _feature_entry(TARGET, target)


def _parse(payload: bytes, name: str | None):  # noqa: ANN202
    from google.protobuf.message import DecodeError

    from .record_pb2 import Record

    record = Record()
    try:
        record.ParseFromString(payload)
    except DecodeError as e:
        raise FormatError(f"not a valid aialgs.data.Record protobuf ({e}); write records with "
                          "s2s_aws.contract.records or `s2s-aws preprocess`", path=name) from None
    return record


def decode_features(payload: bytes, name: str | None = None) -> dict[str, list[int]]:
    """Return every int32-tensor feature of a Record payload as ``{key: ids}``.

    Features of other kinds (float32 tensors, bytes) are left out. :class:`FormatError` when the
    payload is not a Record or a feature key is not UTF-8 text.
    """
    record = _parse(payload, name)
    keys = list(record.features)
    # a proto2 string key that is not valid UTF-8 comes back as bytes (upb) and cannot be looked up
    bad = [k for k in keys if not isinstance(k, str)]
    if bad:
        raise FormatError(f"feature key {bad[0]!r} is not UTF-8 text; feature keys must be UTF-8 strings "
                          "such as 'source' and 'target' (write records with s2s_aws.contract.records or "
                          "`s2s-aws preprocess`)", path=name)
    out: dict[str, list[int]] = {}
    for key in sorted(keys):
        value = record.features[key]
        if value.WhichOneof("value") == "int32_tensor":
            out[key] = list(value.int32_tensor.values)
    return out


def decode_ids(payload: bytes, key: str, name: str | None = None) -> list[int]:
    """Return ``features[key].int32_tensor.values`` of a Record payload.

    :class:`FormatError` when the payload is not a Record, the key is missing, or its value is not an
    int32 tensor.
    """
    record = _parse(payload, name)
    if key not in record.features:
        # a proto2 string key that is not valid UTF-8 comes back as bytes (upb): show it with repr
        have = ", ".join(sorted(k if isinstance(k, str) else repr(k) for k in record.features)) or "none"
        raise FormatError(f"the record has no feature {key!r} (features: {have}); each record needs "
                          f"features[{key!r}].int32_tensor with token ids", path=name)
    value = record.features[key]
    kind = value.WhichOneof("value")
    if kind != "int32_tensor":
        raise FormatError(f"feature {key!r} holds {kind or 'nothing'}, not int32_tensor; token ids must be "
                          "an Int32Tensor", path=name)
    return list(value.int32_tensor.values)


def decode_pair(payload: bytes, name: str | None = None) -> tuple[list[int], list[int]]:
    """Return ``(source ids, target ids)`` of a training-pair Record payload."""
    return decode_ids(payload, SOURCE, name), decode_ids(payload, TARGET, name)


def read_pairs(path: str | os.PathLike) -> Iterator[tuple[list[int], list[int]]]:
    """Yield ``(source ids, target ids)`` for every record of a RecordIO file."""
    label = os.fspath(path)
    for index, payload in enumerate(recordio.iter_records(path)):
        yield decode_pair(payload, name=f"{label} (record {index})")


def write_pairs(path: str | os.PathLike, pairs: Iterable[tuple[Sequence[int], Sequence[int]]]) -> int:
    """Write pairs as a RecordIO file (atomically) and return how many were written."""
    with recordio.RecordIOWriter(path) as writer:
        for source, target in pairs:
            writer.write(encode_pair(source, target))
        return writer.count


# --------------------------------------------------------------------------------------------------
# bulk (numpy) helpers: many pairs at once, for preprocessing and the training program


def _vlen(values: "np.ndarray", top: int | None = None) -> "np.ndarray":
    """Varint byte length of every (non-negative) value; ``top`` (if known) bounds the values."""
    import numpy as np

    n = np.ones(values.shape, dtype=np.uint8)
    limit = (1 << 64) if top is None else top + 1
    for shift in (7, 14, 21, 28, 35, 42, 49, 56, 63):
        if (1 << shift) >= limit:
            break
        n += values >= (1 << shift)
    return n


def _varint_columns(values: "np.ndarray", nbytes: "np.ndarray", width: int) -> list["np.ndarray"]:
    """Byte ``k`` (for ``k < width``) of the varint of every value, as uint8 arrays."""
    import numpy as np

    v = values.astype(np.uint32 if width <= 4 else np.uint64, copy=False)  # width 4: values < 2**28
    out = []
    for k in range(width):
        byte = ((v >> (7 * k)) & 0x7F).astype(np.uint8)
        if k + 1 < width:
            byte |= (nbytes > k + 1).view(np.uint8) << 7
        out.append(byte)
    return out


def _put_varints(out: "np.ndarray", pos: "np.ndarray", values: "np.ndarray", nbytes: "np.ndarray") -> "np.ndarray":
    """Write the varint of ``values[i]`` at ``out[pos[i]:]``; return the positions after them.

    Byte ``k`` of every value is written at once, highest ``k`` first: the bytes a shorter varint does
    not use land on what follows it, so whatever follows must be written afterwards.
    """
    width = int(nbytes.max()) if nbytes.size else 0
    columns = _varint_columns(values, nbytes, max(width, 1))
    for k in range(width - 1, -1, -1):
        out[pos + k] = columns[k]
    return pos + nbytes


def encode_pairs_framed(source_ids: "np.ndarray", source_lengths: "np.ndarray",
                        target_ids: "np.ndarray", target_lengths: "np.ndarray") -> bytes:
    """Encode many pairs at once and return them as RecordIO bytes (whole records, cflag 0).

    ``source_ids`` holds the ids of every source sequence back to back and ``source_lengths`` the
    length of each (likewise for the target). Ids must be in ``[0, 2**31)``. The payload of each record
    equals :func:`encode_pair` of the same pair.

    Vectorized over all pairs and tokens: every field is written for all pairs at once, in file order
    (source header, source ids, target header, target ids, then padding and frames), varints a byte
    column at a time (see :func:`_put_varints`), so nothing loops over pairs or tokens in Python.
    """
    import numpy as np

    s_ids = np.asarray(source_ids)
    t_ids = np.asarray(target_ids)
    s_len = np.asarray(source_lengths, dtype=np.int64)
    t_len = np.asarray(target_lengths, dtype=np.int64)
    n = s_len.size
    if t_len.size != n:
        raise InputError(f"{n} source lengths but {t_len.size} target lengths; give one length per pair")
    if (n and (int(s_len.min()) < 0 or int(t_len.min()) < 0)) or int(s_len.sum()) != s_ids.size \
            or int(t_len.sum()) != t_ids.size:
        raise InputError("the lengths do not add up to the number of ids; give one length per sequence")
    tops = []
    for ids in (s_ids, t_ids):
        top = int(ids.max()) if ids.size else 0
        if ids.size and (int(ids.min()) < 0 or top > _INT32_MAX):
            raise InputError("bulk encoding takes ids in [0, 2**31); use encode_pair for other values")
        tops.append(top)
    if n == 0:
        return b""

    sides = []
    for key, ids, lengths, top_id in ((SOURCE, s_ids, s_len, tops[0]), (TARGET, t_ids, t_len, tops[1])):
        vl = _vlen(ids, top_id)
        total = np.zeros(ids.size + 1, dtype=np.int64)
        np.cumsum(vl, out=total[1:])                      # varint bytes before each token
        first = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=first[1:])                 # index of each pair's first token
        packed = total[first[1:]] - total[first[:-1]]     # Int32Tensor.values bytes
        top = int(packed.max())
        k = key.encode("utf-8")
        tensor = np.where(packed > 0, 1 + _vlen(packed, top) + packed, 0)
        value = 1 + _vlen(tensor, top + 16) + tensor
        entry = 2 + len(k) + 1 + _vlen(value, top + 32) + value   # key tag, key length (< 128), key, value tag
        field = 1 + _vlen(entry, top + 48 + len(k)) + entry       # Record.features entry
        sides.append((k, ids, lengths, vl, total, first, packed, tensor, value, entry, field))

    payload = sides[0][-1] + sides[1][-1]
    if int(payload.max()) > recordio.MAX_LENGTH:
        raise InputError("a pair is too large for one RecordIO record; shorten the sequences")
    size = 8 + payload + (-payload & 3)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(size[:-1], out=starts[1:])
    end = int(starts[-1] + size[-1])
    out = np.zeros(end + 16, dtype=np.uint8)  # slack for the unused bytes of the last varints

    p = starts + 8
    for k, ids, lengths, vl, total, first, packed, tensor, value, entry, field in sides:
        top = int(packed.max())
        const = np.frombuffer(b"\x0a" + bytes([len(k)]) + k + b"\x12", dtype=np.uint8)
        out[p] = 0x0A
        p = _put_varints(out, p + 1, entry, _vlen(entry, top + 48 + len(k)))
        out[p[:, None] + np.arange(const.size)] = const
        p = _put_varints(out, p + const.size, value, _vlen(value, top + 32))
        out[p] = 0x3A
        p = _put_varints(out, p + 1, tensor, _vlen(tensor, top + 16))
        # Int32Tensor.values: tag and length only when there are ids (when not, these two writes land
        # on what follows, which is written afterwards)
        out[p] = 0x0A
        p = np.where(packed > 0, _put_varints(out, p + 1, packed, _vlen(packed, top)), p)
        if ids.size:
            # token j goes to (its pair's first id byte) + (varint bytes before it in its pair)
            pos = total[:-1] + np.repeat(p - total[first[:-1]], lengths)
            _put_varints(out, pos, ids, vl)
        p = p + packed
    pad_start = starts + 8 + payload
    for k in range(3):
        out[pad_start[size - 8 - payload > k] + k] = 0
    words = out[:end].view("<u4")
    words[starts // 4] = recordio.MAGIC
    words[starts // 4 + 1] = payload.astype(np.uint32)
    return out[:end].tobytes()


@dataclass
class PairArrays:
    """Many pairs as flat numpy arrays: sequence ``i`` is ``ids[offsets[i]:offsets[i + 1]]``."""

    source: "np.ndarray"          # int32, all source ids back to back
    source_offsets: "np.ndarray"  # int64, len = pairs + 1
    target: "np.ndarray"
    target_offsets: "np.ndarray"

    def __len__(self) -> int:
        return len(self.source_offsets) - 1

    def pair(self, i: int) -> tuple[list[int], list[int]]:
        """Return pair ``i`` as two lists."""
        so, to = self.source_offsets, self.target_offsets
        return (self.source[so[i]:so[i + 1]].tolist(), self.target[to[i]:to[i + 1]].tolist())


def read_pair_arrays(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> PairArrays:
    """Read every pair of one or more RecordIO files into flat numpy arrays (compact in memory)."""
    import numpy as np

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    src_chunks: list[np.ndarray] = []
    trg_chunks: list[np.ndarray] = []
    src_lens: list[int] = []
    trg_lens: list[int] = []
    buf_s: list[int] = []
    buf_t: list[int] = []
    for path in paths:
        for s, t in read_pairs(path):
            buf_s.extend(s)
            buf_t.extend(t)
            src_lens.append(len(s))
            trg_lens.append(len(t))
            if len(buf_s) > 1 << 20:
                src_chunks.append(np.array(buf_s, dtype=np.int32))
                trg_chunks.append(np.array(buf_t, dtype=np.int32))
                buf_s, buf_t = [], []
    src_chunks.append(np.array(buf_s, dtype=np.int32))
    trg_chunks.append(np.array(buf_t, dtype=np.int32))

    def offsets(lengths: list[int]) -> "np.ndarray":
        o = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(np.asarray(lengths, dtype=np.int64), out=o[1:])
        return o

    return PairArrays(np.concatenate(src_chunks), offsets(src_lens), np.concatenate(trg_chunks),
                      offsets(trg_lens))
