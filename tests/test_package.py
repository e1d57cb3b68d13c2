"""The package's own promises: a light import path and a working CLI entry point."""
from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "aws_cdk", "sagemaker", "matplotlib", "moto", "starlette", "uvicorn")


def test_import_is_light():
    code = (
        "import sys, s2s_aws\n"
        "s2s_aws.Hyperparameters\n"  # the schema is part of the light path
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import s2s_aws pulled in: {out.stdout.strip()}"


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "s2s_aws", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for command in ("preprocess", "inspect", "train", "deploy", "translate", "quickstart", "pipeline"):
        assert command in out.stdout, f"'{command}' missing from s2s-aws --help"


def test_cli_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from s2s_aws.cli import build_parser\n"
        "build_parser()\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_command_is_a_usage_error():
    out = subprocess.run([sys.executable, "-m", "s2s_aws", "no-such-command"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_global_options_work_before_and_after_the_command():
    from s2s_aws.cli import build_parser

    parser = build_parser()
    before = parser.parse_args(["--json", "--region", "eu-west-1", "inspect", "x.rec"])
    after = parser.parse_args(["inspect", "x.rec", "--json", "--region", "eu-west-1"])
    neither = parser.parse_args(["inspect", "x.rec"])
    for args in (before, after):
        assert args.json is True and args.region == "eu-west-1"
    assert neither.json is False and neither.region is None and neither.verbose == 0


def test_every_public_name_resolves():
    import s2s_aws

    missing = [name for name in s2s_aws.__all__ if getattr(s2s_aws, name, None) is None]
    assert missing == []
    assert s2s_aws.Session.__module__ == "s2s_aws.session"
