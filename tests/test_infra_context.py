"""The CDK app's settings: every ``-c`` value checked with a one-line error, the approval default,
and the ``cdk.json`` launcher that picks the Python environment."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from infra_utils import INFRA

cdk = pytest.importorskip("aws_cdk")


def _config(**context):
    from s2s_infra.config import InfraConfig

    return InfraConfig.from_node(cdk.App(context=context).node)


@pytest.mark.parametrize("key,value,needle", [
    ("ecr_keep_images", "ten", "whole number"),
    ("min_bleu", "high", "number"),
    ("min_bleu", "250", "0 to 100"),
    ("use_spot", "maybe", "true or false"),
    ("approval_status", "approved", "PendingManualApproval"),
    ("region", "Mars-1", "region"),
    ("account", "12345", "12-digit"),
    ("image_source", "docker", "asset or ecr"),
    ("image_tag", "bad tag!", "ECR image tag"),
    ("training_instance_type", "g5.xlarge", "instance type"),
    ("cache_expire_after", "30 days", "ISO 8601"),
    ("source_lang", "en ja", "language"),
    ("log_retention_days", "0", ">= 1"),
    ("schedule", "every day", "rate"),
    ("min_blue", "20", "did you mean min_bleu"),
])
def test_bad_context_value_is_one_line_naming_key_and_value(key, value, needle):
    from s2s_infra.config import ContextError

    with pytest.raises(ContextError) as info:
        _config(**{key: value})
    message = str(info.value)
    assert "\n" not in message
    assert key in message and needle in message, message
    if key != "min_blue":
        assert value in message, message


def test_same_languages_are_rejected():
    from s2s_infra.config import ContextError

    with pytest.raises(ContextError, match="source_lang and target_lang"):
        _config(source_lang="en", target_lang="en")


def test_good_context_values_parse():
    cfg = _config(ecr_keep_images="5", min_bleu="12.5", use_spot="yes", approval_status="Approved",
                  account="123456789012", region="eu-west-1", cache_expire_after="PT12H")
    assert (cfg.ecr_keep_images, cfg.min_bleu, cfg.use_spot, cfg.approval_status) == (5, 12.5, True, "Approved")


def test_approval_defaults_to_pending_manual_approval():
    from s2s_aws.pipeline import PipelineConfig
    from s2s_infra.config import InfraConfig
    from s2s_infra.pipeline_stack import build_pipeline_definition

    assert PipelineConfig.__dataclass_fields__["approval_status"].default == "PendingManualApproval"
    assert json.loads((INFRA / "cdk.json").read_text())["context"]["approval_status"] == "PendingManualApproval"
    for context, expected in (({}, "PendingManualApproval"), ({"approval_status": "Approved"}, "Approved")):
        config = InfraConfig.from_node(cdk.App(context=context).node)
        definition = json.loads(build_pipeline_definition(config))
        params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
        assert params["ModelApprovalStatus"] == expected


# ------------------------------------------------------------------------------------ launcher
def _fake_python(bindir: Path, name: str, tag: str) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    exe = bindir / name
    exe.write_text(f'#!/bin/sh\necho "{tag} $@"\n')
    exe.chmod(0o755)


def _launch(infra: Path, env: dict) -> str:
    proc = subprocess.run(["sh", str(infra / "launch.sh")], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_cdk_json_runs_the_launcher():
    assert json.loads((INFRA / "cdk.json").read_text())["app"] == "sh launch.sh"


def test_launcher_prefers_virtual_env_then_repo_venv_then_python3(tmp_path):
    repo = tmp_path / "repo"
    infra = repo / "infra"
    infra.mkdir(parents=True)
    shutil.copy(INFRA / "launch.sh", infra / "launch.sh")
    path_bin = tmp_path / "path-bin"
    _fake_python(path_bin, "python3", "path-python3")
    base = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    base["PATH"] = f"{path_bin}{os.pathsep}/usr/bin:/bin"

    # nothing else: python3 from PATH
    assert _launch(infra, base) == f"path-python3 {infra}/app.py"
    # the repository's .venv beats python3
    _fake_python(repo / ".venv" / "bin", "python", "repo-venv")
    assert _launch(infra, base) == f"repo-venv {infra}/app.py"
    # an activated environment beats both
    venv = tmp_path / "active"
    _fake_python(venv / "bin", "python", "active-venv")
    assert _launch(infra, dict(base, VIRTUAL_ENV=str(venv))) == f"active-venv {infra}/app.py"
    # a VIRTUAL_ENV without a python is skipped
    assert _launch(infra, dict(base, VIRTUAL_ENV=str(tmp_path / "gone"))) == f"repo-venv {infra}/app.py"


# -------------------------------------------------------------------------------- npx cdk synth
@pytest.mark.slow
@pytest.mark.skipif(not (INFRA / "node_modules" / ".bin" / "cdk").exists(),
                    reason="infra/node_modules not installed (scripts/setup.sh runs npm ci)")
def test_cdk_synth_with_a_bad_context_value_prints_one_line_no_traceback(tmp_path):
    env = dict(os.environ, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_VERSION_CHECK="1")
    proc = subprocess.run(
        [str(INFRA / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "--no-notices", "-o",
         str(tmp_path / "out"), "-c", "min_bleu=high"],
        cwd=INFRA, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    assert "error: cdk context min_bleu='high' is not a number" in out, out
