"""SDK security (issue #9): no secrets in logs, encryption and isolation options reach the requests.

Logging property (decided here): the project's own loggers (``s2s_aws.*``) never write the secret
access key, the session token, a SigV4 signature or a presigned-URL query, at any level including
DEBUG. botocore's own DEBUG logging prints request headers (``X-Amz-Security-Token``,
``Authorization``): that is boto3's behaviour when a user turns botocore DEBUG on, outside our
control; the secret access key itself is never printed by anyone (asserted over all loggers).

Encryption/isolation request snapshots that already exist: ``tests/test_sdk_training.py::
test_create_training_job_request_snapshot`` (``EnableNetworkIsolation``, ``VolumeKmsKeyId``,
``OutputDataConfig.KmsKeyId``) and ``test_plain_request_has_no_spot_vpc_or_kms``. Added here:
endpoint config and transform ``KmsKeyId``.
"""
from __future__ import annotations

import json
import logging

import pytest
from test_sdk_support import BUCKET, REGION, make_prep, make_session

from s2s_aws.errors import S2SError
from s2s_aws.training import TrainingConfig

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETMARK1"
TOKEN = "FwoGZXIvYXdzEXAMPLETOKENMARKER0123456789abcdef"
KEY_ID = "AKIAUNIQUEMARKER0001"


@pytest.fixture
def aws_unique(monkeypatch):
    """moto with credentials whose values are unique markers."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_SECURITY_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER"):
        monkeypatch.delenv(k, raising=False)
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto_session = boto3.Session(region_name=REGION)
        boto_session.client("s3").create_bucket(Bucket=BUCKET)
        yield boto_session


def _messages(records, prefix: str = "") -> list[str]:
    out = []
    for r in records:
        if r.name.startswith(prefix):
            text = r.getMessage()
            if r.exc_info:
                text += logging.Formatter().formatException(r.exc_info)
            out.append(text)
    return out


def test_no_credentials_or_signatures_in_logs_at_debug(aws_unique, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    sess = make_session(aws_unique)
    channels = sess.upload_channels(make_prep(tmp_path / "prep"))
    job = sess.train(channels, {"rnn_num_hidden": 64}, instance_type="ml.m5.xlarge")
    job.wait(timeout=60)
    url = sess.s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "x"})
    logging.getLogger("s2s_aws.test").debug("a presigned URL exists in this test: %d chars", len(url))
    with pytest.raises(S2SError) as info:  # an AWS error on the way: its message must be clean too
        make_session(aws_unique, bucket="no-such-bucket-xyz").upload_channels(tmp_path / "prep")
    ours = _messages(caplog.records, "s2s_aws")
    everything = _messages(caplog.records)
    assert len(ours) >= 5, "the SDK logged almost nothing: the capture is not working"
    assert any("X-Amz-Security-Token" in m or TOKEN in m for m in everything), \
        "botocore DEBUG did not run: the test would not see a leak"
    for text in ours + [str(info.value)]:
        for secret in (SECRET, TOKEN, "X-Amz-Signature", "Signature=", "X-Amz-Credential", "Authorization"):
            assert secret not in text, f"{secret!r} logged: {text[:300]}"
    assert not any(SECRET in m for m in everything), "the secret access key reached a log"


def test_endpoint_config_and_transform_carry_the_kms_key(aws_unique):
    from s2s_aws.hosting import create_endpoint_config
    from s2s_aws.transform import build_transform_request

    sess = make_session(aws_unique)
    seen: list[dict] = []
    sess.sagemaker.meta.events.register("before-parameter-build.sagemaker.CreateEndpointConfig",
                                        lambda params, **_: seen.append(json.loads(json.dumps(params))))
    sess.sagemaker.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                                PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/m.tar.gz"})
    create_endpoint_config(sess, "m", kms_key="arn:aws:kms:us-east-1:123456789012:key/ep")
    create_endpoint_config(sess, "m")
    assert seen[0]["KmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/ep"
    assert "KmsKeyId" not in seen[1]
    req = build_transform_request("t", "m", "s3://b/in/", "s3://b/out/", kms_key="alias/out",
                                  instance_type="ml.m5.xlarge", instance_count=1, run_id="r")
    assert req["TransformOutput"]["KmsKeyId"] == "alias/out"


def test_network_isolation_is_an_option_and_off_by_default():
    from s2s_aws.training import build_training_request

    common = dict(image_uri="img", role_arn="arn:aws:iam::1:role/r",
                  channels={"train": "s3://b/t/", "validation": "s3://b/v/", "vocab": "s3://b/w/"},
                  hyperparameters={}, output_path="s3://b/o/", run_id="r")
    on = build_training_request("j", config=TrainingConfig(network_isolation=True), **common)
    off = build_training_request("j", config=TrainingConfig(), **common)
    assert on["EnableNetworkIsolation"] is True
    assert off["EnableNetworkIsolation"] is False
