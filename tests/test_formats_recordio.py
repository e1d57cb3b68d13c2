"""RecordIO framing: round trips, split records, bad magic, truncation."""
from __future__ import annotations

import io
import struct

import pytest

from s2s_aws.errors import FormatError
from s2s_aws.contract import recordio

MAGIC = bytes.fromhex("0a23d7ce")  # 0xCED7230A little-endian


def header(cflag: int, length: int) -> bytes:
    return MAGIC + struct.pack("<I", cflag << 29 | length)


def test_frame_layout_and_padding():
    assert recordio.MAGIC == 0xCED7230A
    assert recordio.frame(b"abcde") == header(0, 5) + b"abcde\0\0\0"
    assert recordio.frame(b"abcd") == header(0, 4) + b"abcd"
    assert recordio.frame(b"") == header(0, 0)


def test_round_trip_path_and_stream(tmp_path):
    payloads = [b"", b"x", b"hello world", bytes(range(256)) * 3]
    path = tmp_path / "a.rec"
    with recordio.RecordIOWriter(path) as w:
        for p in payloads:
            w.write(p)
    assert w.count == 4
    assert list(recordio.iter_records(path)) == payloads
    assert list(recordio.iter_records(str(path))) == payloads
    with open(path, "rb") as f:
        assert list(recordio.iter_records(f)) == payloads
    data = recordio.encode_records(payloads)
    assert data == path.read_bytes()
    assert recordio.decode_records(data) == payloads


def test_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "b.rec"
    with pytest.raises(RuntimeError):
        with recordio.RecordIOWriter(path) as w:
            w.write(b"abc")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_reader_joins_hand_built_split_record():
    # a payload "AAAA<magic>BBBB<magic>CC" split at its two aligned magic values
    data = (header(1, 4) + b"AAAA" + header(2, 4) + b"BBBB" + header(3, 2) + b"CC\0\0"
            + header(0, 3) + b"xyz\0")
    assert recordio.decode_records(data) == [b"AAAA" + MAGIC + b"BBBB" + MAGIC + b"CC", b"xyz"]
    # first part then last part, no middle
    data = header(1, 0) + header(3, 1) + b"Z\0\0\0"
    assert recordio.decode_records(data) == [MAGIC + b"Z"]


def test_writer_split_on_magic_matches_dmlc_layout():
    payload = b"AAAA" + MAGIC + b"BBBB" + MAGIC + b"CC"
    framed = recordio.frame(payload, split_on_magic=True)
    assert framed == header(1, 4) + b"AAAA" + header(2, 4) + b"BBBB" + header(3, 2) + b"CC\0\0"
    # unaligned magic is not a split point
    unaligned = b"A" + MAGIC + b"BBB"
    assert recordio.frame(unaligned, split_on_magic=True) == recordio.frame(unaligned)
    for p in (payload, unaligned, MAGIC, MAGIC * 3, b"AB" + MAGIC * 2):
        assert recordio.decode_records(recordio.frame(p, split_on_magic=True)) == [p]


def test_bad_magic_names_file_and_offset(tmp_path):
    path = tmp_path / "bad.rec"
    good = recordio.frame(b"hello")  # 16 bytes
    path.write_bytes(good + b"\x00\x01\x02\x03" + struct.pack("<I", 1) + b"x\0\0\0")
    it = recordio.iter_records(path)
    assert next(it) == b"hello"
    with pytest.raises(FormatError) as e:
        next(it)
    assert e.value.path == str(path)
    assert e.value.offset == 16
    assert str(path) in str(e.value) and "byte offset 16" in str(e.value) and "magic" in str(e.value)


@pytest.mark.parametrize("cut", [3, 8 + 2, 8 + 6])
def test_truncated_file_names_offset(tmp_path, cut):
    data = recordio.frame(b"first") + recordio.frame(b"second")  # 16 + 16 bytes
    path = tmp_path / "cut.rec"
    path.write_bytes(data[: 16 + cut])
    with pytest.raises(FormatError) as e:
        list(recordio.iter_records(path))
    assert e.value.offset == 16
    assert "truncated" in str(e.value) and str(path) in str(e.value)


def test_split_record_errors():
    with pytest.raises(FormatError, match="without a first part"):
        recordio.decode_records(header(3, 0))
    with pytest.raises(FormatError, match="ends inside a split record") as e:
        recordio.decode_records(recordio.frame(b"ok") + header(1, 4) + b"AAAA")
    assert e.value.offset == 12
    with pytest.raises(FormatError, match="interrupts"):
        recordio.decode_records(header(1, 0) + header(0, 0))
    with pytest.raises(FormatError, match="request body"):
        recordio.decode_records(b"nope")


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        list(recordio.iter_records(tmp_path / "missing.rec"))


def test_stream_name_in_errors():
    stream = io.BytesIO(b"\0" * 8)
    with pytest.raises(FormatError, match="upload.rec"):
        list(recordio.iter_records(stream, name="upload.rec"))
