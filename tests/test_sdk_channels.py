"""Channel upload to S3 (moto): keys, checksums, skip-unchanged, validation before upload."""
from __future__ import annotations

import hashlib
import json

import pytest
from test_sdk_support import BUCKET, PREFIX, aws, make_prep, prep, sess  # noqa: F401  (fixtures)

from s2s_aws.channels import Channels
from s2s_aws.errors import FormatError, InputError


def _keys(boto_session) -> list[str]:
    resp = boto_session.client("s3").list_objects_v2(Bucket=BUCKET)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def test_upload_puts_each_file_under_its_channel_prefix(sess, prep, aws) -> None:
    channels = sess.upload_channels(prep)
    assert channels == Channels(f"s3://{BUCKET}/{PREFIX}/train/", f"s3://{BUCKET}/{PREFIX}/validation/",
                                f"s3://{BUCKET}/{PREFIX}/vocab/")
    assert _keys(aws) == [f"{PREFIX}/train/train.rec", f"{PREFIX}/validation/val.rec",
                          f"{PREFIX}/vocab/vocab.src.json", f"{PREFIX}/vocab/vocab.trg.json"]
    assert len(channels.uploaded) == 4 and channels.skipped == ()


def test_objects_carry_sha256_metadata_and_content_type(sess, prep, aws) -> None:
    sess.upload_channels(prep)
    s3 = aws.client("s3")
    head = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/train/train.rec")
    assert head["Metadata"]["sha256"] == hashlib.sha256((prep / "train.rec").read_bytes()).hexdigest()
    assert head["ContentType"] == "application/x-recordio-protobuf"
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/vocab/vocab.src.json")["Body"].read()
    assert json.loads(body)["car"] == 8


def test_s3_checksum_algorithm_is_requested(sess, prep, aws) -> None:
    seen: list[str | None] = []

    def capture(params, **_):
        seen.append(params.get("ChecksumAlgorithm"))

    sess.s3.meta.events.register("before-parameter-build.s3.PutObject", capture)
    sess.upload_channels(prep)
    assert seen == ["SHA256"] * 4


def test_unchanged_files_are_skipped_and_changed_ones_reuploaded(sess, prep, aws) -> None:
    sess.upload_channels(prep)
    again = sess.upload_channels(prep)
    assert again.uploaded == () and len(again.skipped) == 4

    make_prep(prep, n_pairs=7)  # train.rec changes, vocabularies stay the same
    third = sess.upload_channels(prep)
    assert third.uploaded == (f"s3://{BUCKET}/{PREFIX}/train/train.rec",)
    assert len(third.skipped) == 3
    assert len(sess.upload_channels(prep, force=True).uploaded) == 4


def test_multipart_upload_for_large_file_keeps_checksum(sess, prep, aws) -> None:
    from s2s_aws.channels import default_transfer_config

    big = prep / "train.rec"
    from s2s_aws.contract import records

    records.write_pairs(big, [([4, 5, 6, 7, 8] * 20, [4, 5, 6] * 20)] * 30000)  # ~ 7.5 MB
    config = default_transfer_config(multipart_threshold=5 * 1024 * 1024)
    config.multipart_chunksize = 5 * 1024 * 1024
    calls: list[str] = []
    sess.s3.meta.events.register("before-parameter-build.s3.UploadPart", lambda params, **_: calls.append("part"))
    sess.upload_channels(prep, transfer_config=config)
    assert len(calls) >= 2
    head = aws.client("s3").head_object(Bucket=BUCKET, Key=f"{PREFIX}/train/train.rec")
    assert head["Metadata"]["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    assert head["ContentLength"] == big.stat().st_size


def test_missing_file_is_reported_before_any_upload(sess, prep, aws) -> None:
    (prep / "val.rec").unlink()
    with pytest.raises(InputError, match="val.rec"):
        sess.upload_channels(prep)
    assert _keys(aws) == []


@pytest.mark.parametrize("name, content, match", [
    ("vocab.trg.json", b"{not json", "vocab.trg.json"),
    ("val.rec", b"\x00\x01\x02\x03garbage!", "val.rec"),
    ("train.rec", b"", "train.rec"),
])
def test_malformed_file_is_caught_before_anything_is_uploaded(sess, prep, aws, name, content, match) -> None:
    (prep / name).write_bytes(content)
    with pytest.raises(FormatError, match=match):
        sess.upload_channels(prep)
    assert _keys(aws) == []


def test_record_that_is_not_a_pair_is_rejected(sess, prep, aws) -> None:
    from s2s_aws.contract import recordio, records

    with recordio.RecordIOWriter(prep / "train.rec") as w:
        w.write(records.encode_ids("source", [4, 5]))  # no target feature
    with pytest.raises(FormatError, match="train.rec"):
        sess.upload_channels(prep)
    assert _keys(aws) == []


def test_missing_directory_and_bucket_are_input_errors(sess, tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        sess.upload_channels(tmp_path / "nope")
    sess.bucket = None
    with pytest.raises(InputError, match="bucket"):
        sess.upload_channels(make_prep(tmp_path / "p"))


def test_channel_subdirectories_are_accepted(sess, tmp_path, aws) -> None:
    flat = make_prep(tmp_path / "flat")
    nested = tmp_path / "nested"
    for ch, files in {"train": ["train.rec"], "validation": ["val.rec"], "vocab": ["vocab.src.json", "vocab.trg.json"]}.items():
        (nested / ch).mkdir(parents=True)
        for f in files:
            (nested / ch / f).write_bytes((flat / f).read_bytes())
    sess.upload_channels(nested)
    assert f"{PREFIX}/validation/val.rec" in _keys(aws)


def test_upload_to_missing_bucket_says_what_to_do(aws, prep) -> None:
    from test_sdk_support import make_session

    from s2s_aws.errors import AWSOperationError

    s = make_session(aws, bucket="no-such-bucket-here")
    with pytest.raises(AWSOperationError, match="bucket"):
        s.upload_channels(prep)
