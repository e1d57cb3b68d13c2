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
from s2s_aws.contract import recordio, records

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


# ---------------------------------------------------------------- killed mid-upload (issue #19 item 7)
# A real ``s2s-aws upload`` process, against a moto server, is stopped by a signal while its
# multipart upload is in flight (a botocore hook announces part 3 and then slows the parts down).

_CHILD = r"""
import sys, time
from pathlib import Path
from boto3.s3.transfer import TransferConfig
import s2s_aws.channels as channels
from s2s_aws.cli import main

marker = Path(sys.argv[1])
MiB = 1024 * 1024
channels.default_transfer_config = lambda: TransferConfig(
    multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=1)
import botocore.session
real_create = botocore.session.Session.create_client
def create_client(self, *args, **kwargs):
    client = real_create(self, *args, **kwargs)
    seen = {"parts": 0}
    def hook(params, **_):
        seen["parts"] += 1
        if seen["parts"] >= 3:
            marker.write_text(str(params.get("PartNumber")))
            time.sleep(0.5)
    client.meta.events.register("before-call.s3.UploadPart", hook)
    return client
botocore.session.Session.create_client = create_client
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture
def moto_server(monkeypatch):
    from moto.server import ThreadedMotoServer
    from test_sdk_support import fake_credentials

    fake_credentials(monkeypatch)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    import boto3

    import urllib.request

    def reset():  # the server's backends live in this process; start and leave them empty
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30).close()

    reset()
    s3 = boto3.Session(region_name="us-east-1").client("s3", endpoint_url=url)
    s3.create_bucket(Bucket=BUCKET)
    try:
        yield url, s3
    finally:
        reset()
        server.stop()


def _start_upload(tmp_path, url, prep):
    import subprocess
    import sys

    marker = tmp_path / "in-flight"
    env = {**os.environ, "AWS_ENDPOINT_URL": url, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(marker), "upload", str(prep),
                             "--bucket", BUCKET, "--prefix", PREFIX],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import time

    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, f"upload ended before the multipart upload was in flight: {proc.communicate()}"
        assert time.monotonic() < deadline, "the upload never reached part 3"
        time.sleep(0.05)
    return proc


def _open_uploads(s3):
    return [(u["Key"], u["UploadId"]) for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signal_mid_upload_aborts_the_multipart_upload_and_exits_cleanly(moto_server, prep, tmp_path, signame):
    import signal

    url, s3 = moto_server
    proc = _start_upload(tmp_path, url, prep)
    signum = getattr(signal, signame)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, (proc.returncode, err)
    assert "interrupted" in err and "again" in err, err
    assert "Traceback" not in err, err
    assert _open_uploads(s3) == [], "multipart upload left open"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert f"{PREFIX}/validation/val.rec" not in keys


def test_rerun_after_sigkill_aborts_the_stale_multipart_upload(moto_server, prep, tmp_path):
    import signal

    import boto3

    url, s3 = moto_server
    proc = _start_upload(tmp_path, url, prep)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    val_key = f"{PREFIX}/validation/val.rec"
    stale = _open_uploads(s3)
    assert [k for k, _ in stale] == [val_key], stale  # what a SIGKILL leaves behind
    # someone else's open upload under the same prefix but for another key is not ours to abort
    other = s3.create_multipart_upload(Bucket=BUCKET, Key=f"{PREFIX}/validation/other.bin")["UploadId"]

    again = upload_channels(boto3.Session(region_name="us-east-1").client("s3", endpoint_url=url), prep,
                            BUCKET, PREFIX, transfer_config=_transfer_config(), checksum_algorithm=None)
    assert f"s3://{BUCKET}/{val_key}" in again.uploaded
    assert _open_uploads(s3) == [(f"{PREFIX}/validation/other.bin", other)]
    body = s3.get_object(Bucket=BUCKET, Key=val_key)["Body"].read()
    assert body == (prep / "val.rec").read_bytes()


def test_stale_upload_of_a_skipped_file_is_aborted_too(aws, prep):
    """A file that is intact in S3 is skipped, but an open upload of it (a killed --force run) still goes."""
    s3 = aws.client("s3")
    upload_channels(s3, prep, BUCKET, PREFIX, transfer_config=_transfer_config(), checksum_algorithm=None)
    key = f"{PREFIX}/train/train.rec"
    s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    again = upload_channels(s3, prep, BUCKET, PREFIX, transfer_config=_transfer_config(), checksum_algorithm=None)
    assert again.uploaded == ()
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_no_permission_to_list_uploads_warns_and_uploads(aws, prep, caplog):
    from botocore.exceptions import ClientError

    s3 = aws.client("s3")

    def deny(**_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListMultipartUploads")

    s3.meta.events.register("before-call.s3.ListMultipartUploads", deny, unique_id="deny")
    with caplog.at_level("WARNING", logger="s2s_aws.channels"):
        done = upload_channels(s3, prep, BUCKET, PREFIX, transfer_config=_transfer_config(), checksum_algorithm=None)
    assert len(done.uploaded) == 4
    assert any("ListBucketMultipartUploads" in r.getMessage() for r in caplog.records), caplog.text
