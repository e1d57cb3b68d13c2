"""Fixtures and helpers shared by the SDK/CLI AWS tests (moto, Stubber, a tiny prep directory).

Imported by tests/test_sdk_*.py and tests/test_cli_aws*.py; its own tests check the helpers.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

REGION = "us-east-1"
BUCKET = "s2s-test-bucket"
PREFIX = "seq2seq/demo"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/s2s-aws-seq2seq:latest"
RUN_ID = "testrun-0001"

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, no profile, no endpoint override: nothing can reach a real account."""
    for k, v in FAKE_ENV.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_S3",
              "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "S2S_BUCKET", "S2S_PREFIX", "S2S_ROLE_ARN",
              "S2S_IMAGE_URI", "S2S_RUN_ID"):
        monkeypatch.delenv(k, raising=False)


class FakeClock:
    """Replaces time in waits: sleeping advances the clock instantly and is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    """A moto-mocked AWS with the test bucket; yields a boto3 Session."""
    fake_credentials(monkeypatch)
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto_session = boto3.Session(region_name=REGION)
        boto_session.client("s3").create_bucket(Bucket=BUCKET)
        yield boto_session


def make_session(boto_session: Any, **kwargs: Any):
    """An s2s_aws.Session on the test bucket with a fake clock (``sess.clock.sleep`` records waits)."""
    from s2s_aws._aws import Backoff, Clock
    from s2s_aws.session import Session

    fake = FakeClock()
    kwargs.setdefault("bucket", BUCKET)
    kwargs.setdefault("prefix", PREFIX)
    kwargs.setdefault("role_arn", ROLE)
    kwargs.setdefault("image_uri", IMAGE)
    kwargs.setdefault("run_id", RUN_ID)
    sess = Session(boto_session, clock=Clock(sleep=fake.sleep, monotonic=fake.monotonic),
                   backoff=Backoff(initial=1.0, factor=2.0, maximum=8.0), **kwargs)
    sess.fake_clock = fake
    return sess


@pytest.fixture
def sess(aws):
    return make_session(aws)


SRC_VOCAB = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "can": 4, "you": 5, "drive": 6, "a": 7, "car": 8, "?": 9}
TRG_VOCAB = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "kuruma": 4, "wo": 5, "unten": 6, "dekiru": 7, "?": 8}


def make_prep(directory: Path, n_pairs: int = 5) -> Path:
    """A tiny prep directory: train.rec, val.rec, vocab.src.json, vocab.trg.json."""
    from s2s_aws.formats import records, vocab

    directory.mkdir(parents=True, exist_ok=True)
    pairs = [([4, 5, 6, 7, 8, 9][: 2 + i % 4], [4, 5, 6, 7][: 1 + i % 3]) for i in range(n_pairs)]
    records.write_pairs(directory / "train.rec", pairs)
    records.write_pairs(directory / "val.rec", pairs[:2])
    vocab.save_vocab(SRC_VOCAB, directory / "vocab.src.json")
    vocab.save_vocab(TRG_VOCAB, directory / "vocab.trg.json")
    return directory


@pytest.fixture
def prep(tmp_path: Path) -> Path:
    return make_prep(tmp_path / "prep")


def training_description(name: str, status: str, *, reason: str | None = None, secondary: str = "Training",
                         metrics: dict[str, float] | None = None) -> dict[str, Any]:
    """A DescribeTrainingJob response that passes botocore's Stubber validation."""
    desc: dict[str, Any] = {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/{PREFIX}/output/{name}/output/model.tar.gz"},
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "CreationTime": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        "InputDataConfig": [{"ChannelName": "vocab", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{PREFIX}/vocab/"}}}],
    }
    if reason:
        desc["FailureReason"] = reason
    if metrics:
        desc["FinalMetricDataList"] = [{"MetricName": k, "Value": v} for k, v in metrics.items()]
    return desc


# ---------------------------------------------------------------- tests of the helpers themselves
def test_make_prep_writes_parseable_files(tmp_path: Path) -> None:
    from s2s_aws.formats import records, vocab

    d = make_prep(tmp_path / "p", n_pairs=3)
    assert len(list(records.read_pairs(d / "train.rec"))) == 3
    assert vocab.load_vocab(d / "vocab.trg.json") == TRG_VOCAB


def test_fake_clock_records_sleeps() -> None:
    c = FakeClock()
    c.sleep(2.5)
    c.sleep(1)
    assert c.sleeps == [2.5, 1] and c.monotonic() == 3.5
