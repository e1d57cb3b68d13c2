"""Exit-code table of the ``s2s-aws`` CLI: 0 ok, 1 a job/endpoint failed, 2 bad input or configuration.

Fast paths only: an empty environment for "no credentials", a closed port for "unreachable endpoint",
botocore's own parameter validation for "invalid request". With ``--json`` every error is exactly one
JSON document on stdout.
"""
from __future__ import annotations

import json
import socket
import time

import pytest

from s2s_aws import __version__
from s2s_aws.cli import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def empty_aws_env(monkeypatch, tmp_path):
    """No credentials anywhere: no env keys, no config files, no instance metadata."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "S2S_BUCKET", "S2S_ROLE_ARN", "S2S_IMAGE_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("S2S_MAX_ATTEMPTS", "2")
    return monkeypatch


@pytest.fixture
def fake_keys(empty_aws_env):
    empty_aws_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    empty_aws_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return empty_aws_env


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"s2s-aws {__version__}"


def test_no_credentials_exit_2_with_next_step(empty_aws_env, capsys):
    assert main(["status", "some-job"]) == 2
    err = capsys.readouterr().err
    assert "no AWS credentials" in err and "aws configure" in err and "s2s-aws local up" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unreachable_endpoint_url_fails_fast_with_the_url(fake_keys, capsys):
    url = f"http://127.0.0.1:{_closed_port()}"
    fake_keys.setenv("AWS_ENDPOINT_URL", url)
    fake_keys.setenv("S2S_CONNECT_TIMEOUT_S", "1")
    start = time.monotonic()
    rc = main(["status", "some-job"])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert rc == 2, err
    assert url in err and "could not connect" in err
    assert elapsed < 10


def test_invalid_parameter_exit_2_one_line():
    import botocore.exceptions as bx

    from s2s_aws._aws import map_botocore_error
    from s2s_aws.errors import InputError

    e = map_botocore_error(bx.ParamValidationError(report="Invalid length for parameter RoleArn\n  x"),
                           "s2s-aws train")
    assert isinstance(e, InputError) and e.exit_code == 2
    assert "\n" not in str(e) and "RoleArn" in str(e)


@pytest.mark.parametrize("argv, expected", [
    (["status", "some-job"], 2),                              # no credentials
    (["inspect", "/nonexistent/file.rec"], 2),                # data command, bad input
])
def test_json_error_is_one_document(empty_aws_env, capsys, argv, expected):
    assert main(["--json", *argv]) == expected
    out = capsys.readouterr().out
    doc = json.loads(out)  # exactly one document
    assert doc["ok"] is False and doc["exit_code"] == expected and doc["error"]


@pytest.mark.parametrize("name, value", [("S2S_MAX_ATTEMPTS", "zero"), ("S2S_CONNECT_TIMEOUT_S", "-1")])
def test_bad_retry_settings_exit_2(fake_keys, capsys, name, value):
    fake_keys.setenv(name, value)
    assert main(["status", "some-job"]) == 2
    assert name in capsys.readouterr().err
