"""Training pairs and id sequences as ``aialgs.data.Record`` payloads.

A training pair is one Record with ``features["source"].int32_tensor.values`` and
``features["target"].int32_tensor.values``: dense token ids without BOS/EOS.

Encoding builds the protobuf wire bytes directly (the layout of a Record holding int32 tensors is
small and fixed), which is much faster than one message object per pair and gives the same bytes as
``Record.SerializeToString(deterministic=True)`` (map entries sorted by key). Decoding uses the real
protobuf parser, so any valid Record is accepted whatever wrote it.

Example::

    from s2s_aws.formats import records
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
                          "s2s_aws.formats.records or `s2s-aws preprocess`", path=name) from None
    return record


def decode_features(payload: bytes, name: str | None = None) -> dict[str, list[int]]:
    """Return every int32-tensor feature of a Record payload as ``{key: ids}``."""
    record = _parse(payload, name)
    out: dict[str, list[int]] = {}
    for key in sorted(record.features, key=str):  # keys that are not UTF-8 arrive as bytes
        value = record.features[key]
        if isinstance(key, str) and value.WhichOneof("value") == "int32_tensor":
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


def _vlen(values: "np.ndarray") -> "np.ndarray":
    """Varint byte length of every (non-negative) value."""
    import numpy as np

    n = np.ones(values.shape, dtype=np.int64)
    for shift in (7, 14, 21, 28, 35, 42, 49, 56, 63):
        n += values >= (1 << shift)
    return n


def _put_varints(out: "np.ndarray", pos: "np.ndarray", values: "np.ndarray", nbytes: "np.ndarray") -> None:
    """Write the varint of ``values[i]`` (``nbytes[i]`` long) at ``out[pos[i]:]``."""
    import numpy as np

    values = values.astype(np.uint64, copy=False)
    top = int(nbytes.max()) if nbytes.size else 0
    for k in range(top):
        sel = None if k == 0 else nbytes > k
        v, p, nb = (values, pos, nbytes) if sel is None else (values[sel], pos[sel], nbytes[sel])
        byte = (v >> np.uint64(7 * k)) & np.uint64(0x7F)
        byte |= np.where(nb > k + 1, np.uint64(0x80), np.uint64(0))
        out[p + k] = byte.astype(np.uint8)


def _put_const(out: "np.ndarray", pos: "np.ndarray", data: bytes) -> None:
    import numpy as np

    if pos.size:
        out[pos[:, None] + np.arange(len(data))] = np.frombuffer(data, dtype=np.uint8)


def encode_pairs_framed(source_ids: "np.ndarray", source_lengths: "np.ndarray",
                        target_ids: "np.ndarray", target_lengths: "np.ndarray") -> bytes:
    """Encode many pairs at once and return them as RecordIO bytes (whole records, cflag 0).

    ``source_ids`` holds the ids of every source sequence back to back and ``source_lengths`` the
    length of each (likewise for the target). Ids must be in ``[0, 2**31)``. The payload of each record
    equals :func:`encode_pair` of the same pair.
    """
    import numpy as np

    s_ids = np.asarray(source_ids, dtype=np.int64)
    t_ids = np.asarray(target_ids, dtype=np.int64)
    s_len = np.asarray(source_lengths, dtype=np.int64)
    t_len = np.asarray(target_lengths, dtype=np.int64)
    n = s_len.size
    if t_len.size != n:
        raise InputError(f"{n} source lengths but {t_len.size} target lengths; give one length per pair")
    if int(s_len.sum()) != s_ids.size or int(t_len.sum()) != t_ids.size:
        raise InputError("the lengths do not add up to the number of ids; give one length per sequence")
    for ids in (s_ids, t_ids):
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) > _INT32_MAX):
            raise InputError("bulk encoding takes ids in [0, 2**31); use encode_pair for other values")
    if n == 0:
        return b""

    def side(ids: "np.ndarray", lengths: "np.ndarray"):  # noqa: ANN202
        vl = _vlen(ids)
        pair_of = np.repeat(np.arange(n), lengths)
        packed = np.bincount(pair_of, weights=vl, minlength=n).astype(np.int64) if ids.size \
            else np.zeros(n, np.int64)
        tensor = np.where(packed > 0, 1 + _vlen(packed) + packed, 0)
        value = 1 + _vlen(tensor) + tensor
        entry = 9 + _vlen(value) + value
        field = 1 + _vlen(entry) + entry
        within = np.cumsum(vl) - vl  # exclusive cumsum over all tokens
        first = np.cumsum(packed) - packed
        offset_in_packed = within - first[pair_of] if ids.size else within
        return dict(vl=vl, pair_of=pair_of, packed=packed, tensor=tensor, value=value, entry=entry,
                    field=field, offset=offset_in_packed)

    s, t = side(s_ids, s_len), side(t_ids, t_len)
    payload = s["field"] + t["field"]
    if int(payload.max()) > recordio.MAX_LENGTH:
        raise InputError("a pair is too large for one RecordIO record; shorten the sequences")
    size = 8 + payload + (-payload & 3)
    starts = np.cumsum(size) - size
    out = np.zeros(int(size.sum()), dtype=np.uint8)
    words = out.view("<u4")
    words[starts // 4] = recordio.MAGIC
    words[starts // 4 + 1] = payload.astype(np.uint32)

    p = starts + 8
    for key, d, ids in ((SOURCE, s, s_ids), (TARGET, t, t_ids)):
        out[p] = 0x0A
        _put_varints(out, p + 1, d["entry"], _vlen(d["entry"]))
        p = p + 1 + _vlen(d["entry"])
        _put_const(out, p, b"\x0a\x06" + key.encode() + b"\x12")
        p = p + 9
        _put_varints(out, p, d["value"], _vlen(d["value"]))
        p = p + _vlen(d["value"])
        out[p] = 0x3A
        _put_varints(out, p + 1, d["tensor"], _vlen(d["tensor"]))
        p = p + 1 + _vlen(d["tensor"])
        has = d["packed"] > 0
        out[p[has]] = 0x0A
        _put_varints(out, p[has] + 1, d["packed"][has], _vlen(d["packed"][has]))
        p = np.where(has, p + 1 + _vlen(d["packed"]), p)
        if ids.size:
            _put_varints(out, p[d["pair_of"]] + d["offset"], ids, d["vl"])
        p = p + d["packed"]
    return out.tobytes()


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
