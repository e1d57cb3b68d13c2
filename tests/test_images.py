"""Image URIs: the AWS built-in seq2seq image per region, our own default image, resolution order."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from s2s_aws.errors import InputError
from s2s_aws.images import (
    BUILTIN_REGISTRIES,
    builtin_image_uri,
    default_image_uri,
    dns_suffix,
    is_builtin_image_uri,
    resolve_image_uri,
)


@pytest.mark.parametrize("region,expected", [
    ("us-east-1", "811284229777.dkr.ecr.us-east-1.amazonaws.com/seq2seq:1"),
    ("us-west-2", "433757028032.dkr.ecr.us-west-2.amazonaws.com/seq2seq:1"),
    ("eu-west-1", "685385470294.dkr.ecr.eu-west-1.amazonaws.com/seq2seq:1"),
    ("ap-northeast-1", "501404015308.dkr.ecr.ap-northeast-1.amazonaws.com/seq2seq:1"),
    ("us-gov-west-1", "226302683700.dkr.ecr.us-gov-west-1.amazonaws.com/seq2seq:1"),
    ("cn-north-1", "390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/seq2seq:1"),
    ("cn-northwest-1", "387376663083.dkr.ecr.cn-northwest-1.amazonaws.com.cn/seq2seq:1"),
    ("us-iso-east-1", "490574956308.dkr.ecr.us-iso-east-1.c2s.ic.gov/seq2seq:1"),
])
def test_builtin_image_uri(region, expected):
    assert builtin_image_uri(region) == expected
    assert is_builtin_image_uri(expected)


def test_builtin_unknown_region_says_how_to_pass_an_image():
    with pytest.raises(InputError) as info:
        builtin_image_uri("mx-central-1")
    message = str(info.value)
    assert "mx-central-1" in message and "image_uri=" in message and "--image-uri" in message
    with pytest.raises(InputError, match="not an AWS region"):
        builtin_image_uri("Frankfurt")


def _sdk_seq2seq_config() -> Path | None:
    spec = importlib.util.find_spec("sagemaker")  # locates the package without importing it
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "core" / "image_uri_config" / "seq2seq.json"
        if path.exists():
            return path
    return None


@pytest.mark.skipif(_sdk_seq2seq_config() is None, reason="sagemaker package (infra extra) not installed")
def test_table_matches_the_sagemaker_sdk_config():
    config = json.loads(_sdk_seq2seq_config().read_text())
    assert config["versions"]["1"]["repository"] == "seq2seq"
    assert BUILTIN_REGISTRIES == config["versions"]["1"]["registries"]


def test_default_image_uri():
    assert default_image_uri("123456789012", "us-east-1") == \
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/s2s-aws-seq2seq:latest"
    assert default_image_uri("123456789012", "cn-north-1", repository="team/nmt", tag="v2") == \
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/nmt:v2"
    assert not is_builtin_image_uri(default_image_uri("123456789012", "us-east-1"))
    for bad in ({"account": "1234"}, {"repository": "Bad Name"}, {"tag": "a" * 129}, {"region": "x"}):
        args = {"account": "123456789012", "region": "us-east-1", **bad}
        with pytest.raises(InputError):
            default_image_uri(**args)


def test_dns_suffix():
    assert dns_suffix("eu-central-1") == "amazonaws.com"
    assert dns_suffix("cn-northwest-1") == "amazonaws.com.cn"
    assert dns_suffix("us-isob-east-1") == "sc2s.sgov.gov"


class _FakeSTS:
    def __init__(self, account=None, error=None):
        self.account, self.error, self.calls = account, error, []

    def get_caller_identity(self):
        self.calls.append("get_caller_identity")
        if self.error:
            raise self.error
        return {"Account": self.account}


class _FakeSession:
    def __init__(self, sts):
        self.sts, self.clients = sts, []

    def client(self, service, region_name=None):
        self.clients.append((service, region_name))
        return self.sts


def test_resolve_order():
    explicit = "999999999999.dkr.ecr.us-east-1.amazonaws.com/mine:3"
    session = _FakeSession(_FakeSTS("111122223333"))
    assert resolve_image_uri(session, "us-east-1", image_uri=explicit) == explicit
    assert resolve_image_uri(session, "us-east-1", image_uri=explicit, builtin=True) == explicit
    assert session.clients == []  # no AWS call when the answer is known
    assert resolve_image_uri(None, "eu-west-1", builtin=True) == builtin_image_uri("eu-west-1")
    assert resolve_image_uri(None, "us-east-1", account="444455556666") == \
        "444455556666.dkr.ecr.us-east-1.amazonaws.com/s2s-aws-seq2seq:latest"
    assert resolve_image_uri(session, "us-west-2") == \
        "111122223333.dkr.ecr.us-west-2.amazonaws.com/s2s-aws-seq2seq:latest"
    assert session.clients == [("sts", "us-west-2")]


def test_resolve_without_account_or_session_fails_clearly():
    with pytest.raises(InputError, match="account="):
        resolve_image_uri(None, "us-east-1")
    failing = _FakeSession(_FakeSTS(error=RuntimeError("Unable to locate credentials")))
    with pytest.raises(InputError, match="Unable to locate credentials") as info:
        resolve_image_uri(failing, "us-east-1")
    assert "image_uri=" in str(info.value)
    with pytest.raises(InputError):
        resolve_image_uri(None, "us-east-1", image_uri="not an image")


def test_resolve_with_moto_sts():
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        uri = resolve_image_uri(boto3.Session(region_name="us-east-1"), "us-east-1")
    assert uri == "123456789012.dkr.ecr.us-east-1.amazonaws.com/s2s-aws-seq2seq:latest"
