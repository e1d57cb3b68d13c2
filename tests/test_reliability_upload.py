"""Channel upload under faults (issue #9), against moto.

A multipart upload that fails after some parts (the network drops, the process is interrupted)
leaves no partial object visible and no multipart upload behind; the error is the SDK's own with
a next step; running the upload again completes it and skips the files that already went up intact.
"""
from __future__ import annotations

import hashlib
import os

import pytest
from test_sdk_support import BUCKET, PREFIX, aws, make_prep  # noqa: F401  (fixtures)

from s2s_aws.channels import upload_channels
from s2s_aws.errors import S2SError
from s2s_aws.formats import recordio, records

MiB = 1024 * 1024


class Interrupted(Exception):
    """Stands in for a dropped connection / an interrupt in the middle of a multipart upload."""


@pytest.fixture
def prep(tmp_path):
    prep = make_prep(tmp_path / "prep")
    # a validation file large enough for 4 parts of 5 MiB: a valid first record, then bulk payloads
    blobs = [records.encode_pair([4, 5], [6])] + [os.urandom(MiB) for _ in range(18)]
    (prep / "val.rec").write_bytes(recordio.encode_records(blobs))
    return prep


def _transfer_config():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=2)


def _fail_after(s3, parts_ok: int) -> dict:
    seen = {"parts": 0, "failed": 0}

    def hook(params, **_):
        seen["parts"] += 1
        if seen["parts"] > parts_ok:
            seen["failed"] += 1
            raise Interrupted(f"connection dropped during part {params.get('PartNumber')}")

    s3.meta.events.register("before-call.s3.UploadPart", hook, unique_id="fault-injection")
    return seen


def test_interrupted_multipart_upload_leaves_nothing_and_rerun_completes(aws, prep):
    s3 = aws.client("s3")
    seen = _fail_after(s3, parts_ok=2)
    with pytest.raises(S2SError) as info:
        upload_channels(s3, prep, BUCKET, PREFIX, transfer_config=_transfer_config(), checksum_algorithm=None)
    assert seen["failed"] >= 1
    message = str(info.value)
    assert "val.rec" in message and "again" in message

    val_key = f"{PREFIX}/validation/val.rec"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert val_key not in keys, "a partial object is visible"
    assert keys == [f"{PREFIX}/train/train.rec"], keys  # the file before it went up whole
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == [], "multipart upload left open"

    s3.meta.events.unregister("before-call.s3.UploadPart", unique_id="fault-injection")
    again = upload_channels(s3, prep, BUCKET, PREFIX, transfer_config=_transfer_config(), checksum_algorithm=None)
    assert again.skipped == (f"s3://{BUCKET}/{PREFIX}/train/train.rec",)
    assert set(again.uploaded) == {f"s3://{BUCKET}/{val_key}", f"s3://{BUCKET}/{PREFIX}/vocab/vocab.src.json",
                                   f"s3://{BUCKET}/{PREFIX}/vocab/vocab.trg.json"}
    body = s3.get_object(Bucket=BUCKET, Key=val_key)["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256((prep / "val.rec").read_bytes()).digest()
    assert s3.head_object(Bucket=BUCKET, Key=val_key)["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()

    third = upload_channels(s3, prep, BUCKET, PREFIX, transfer_config=_transfer_config(), checksum_algorithm=None)
    assert third.uploaded == () and len(third.skipped) == 4


def test_object_changed_behind_our_back_is_uploaded_again(aws, prep):
    """Skipping trusts size + SHA-256 of the remote object, not the key alone."""
    s3 = aws.client("s3")
    upload_channels(s3, prep, BUCKET, PREFIX, transfer_config=_transfer_config(), checksum_algorithm=None)
    key = f"{PREFIX}/train/train.rec"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"truncated")  # overwritten, no sha256 metadata
    again = upload_channels(s3, prep, BUCKET, PREFIX, transfer_config=_transfer_config(), checksum_algorithm=None)
    assert again.uploaded == (f"s3://{BUCKET}/{key}",)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == (prep / "train.rec").read_bytes()
