"""Record payloads: golden wire bytes, protobuf agreement, bulk encoding, pair files."""
from __future__ import annotations

import numpy as np
import pytest

from s2s_aws.errors import FormatError, InputError
from s2s_aws.contract import record_pb2, recordio, records

# Record{features: {"source": int32_tensor[4, 5, 6], "target": int32_tensor[300, 5]}}, worked by hand:
# 0a 11 | 0a 06 "source" | 12 07 | 3a 05 | 0a 03 | 04 05 06          (entry 17 bytes)
# 0a 11 | 0a 06 "target" | 12 07 | 3a 05 | 0a 03 | ac 02 05          (300 = ac 02)
GOLDEN = bytes.fromhex("0a110a06736f7572636512073a050a03040506" "0a110a06746172676574" "12073a050a03ac0205")


def _pb(source, target) -> bytes:
    r = record_pb2.Record()
    r.features["source"].int32_tensor.values.extend(source)
    r.features["target"].int32_tensor.values.extend(target)
    return r.SerializeToString(deterministic=True)


def test_golden_bytes():
    assert records.encode_pair([4, 5, 6], [300, 5]) == GOLDEN
    assert _pb([4, 5, 6], [300, 5]) == GOLDEN
    parsed = record_pb2.Record()
    parsed.ParseFromString(GOLDEN)
    assert list(parsed.features["target"].int32_tensor.values) == [300, 5]
    assert records.decode_pair(GOLDEN) == ([4, 5, 6], [300, 5])


@pytest.mark.parametrize("source,target", [
    ([], []), ([0], [1]), ([127, 128, 16383, 16384], [2**21, 2**28, 2**31 - 1]), ([-1, -2**31], [5]),
    (list(range(300)), [3] * 200),
])
def test_encode_pair_matches_protobuf(source, target):
    assert records.encode_pair(source, target) == _pb(source, target)
    assert records.decode_pair(records.encode_pair(source, target)) == (source, target)


def test_encode_ids_and_decode_ids():
    payload = records.encode_ids("source", [9, 8])
    assert records.decode_ids(payload, "source") == [9, 8]
    assert records.decode_features(payload) == {"source": [9, 8]}
    with pytest.raises(FormatError, match="no feature 'target'"):
        records.decode_ids(payload, "target")


def test_decode_rejects_non_int32_and_garbage():
    r = record_pb2.Record()
    r.features["source"].float32_tensor.values.append(1.0)
    with pytest.raises(FormatError, match="float32_tensor"):
        records.decode_ids(r.SerializeToString(), "source")
    with pytest.raises(FormatError, match="not a valid aialgs.data.Record"):
        records.decode_pair(b"\xff\xff\xff")


def test_out_of_range_id():
    with pytest.raises(InputError, match="int32"):
        records.encode_pair([2**31], [])


def test_bulk_encoder_matches_single_encoder():
    rng = np.random.default_rng(7)
    pairs = []
    for _ in range(500):
        ls, lt = rng.integers(0, 12, size=2)
        pairs.append((rng.integers(0, 2 ** int(rng.integers(1, 31)), ls).tolist(),
                      rng.integers(0, 2 ** int(rng.integers(1, 31)), lt).tolist()))
    pairs.append(([5] * 5000, [7]))  # lengths needing multi-byte varints in every header field
    src = np.array([i for s, _ in pairs for i in s], dtype=np.int32)
    trg = np.array([i for _, t in pairs for i in t], dtype=np.int32)
    framed = records.encode_pairs_framed(src, [len(s) for s, _ in pairs], trg, [len(t) for _, t in pairs])
    assert framed == recordio.encode_records(records.encode_pair(s, t) for s, t in pairs)
    assert [records.decode_pair(p) for p in recordio.decode_records(framed)] == pairs
    assert records.encode_pairs_framed(np.zeros(0), [], np.zeros(0), []) == b""
    with pytest.raises(InputError):
        records.encode_pairs_framed(np.array([-1]), [1], np.array([1]), [1])


def test_write_read_pairs_and_arrays(tmp_path):
    pairs = [([4, 5], [6]), ([7], [8, 9, 10]), ([], [4])]
    path = tmp_path / "p.rec"
    assert records.write_pairs(path, pairs) == 3
    assert list(records.read_pairs(path)) == pairs
    arrays = records.read_pair_arrays([path, path])
    assert len(arrays) == 6
    assert arrays.source.dtype == np.int32
    assert [arrays.pair(i) for i in range(6)] == pairs * 2
