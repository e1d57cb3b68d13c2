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
