"""The container layout: `train`/`serve` entry scripts reach the console scripts, and the Dockerfile
installs what they need. (No Docker engine here: the image itself is not built in tests.)"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTAINER = REPO / "containers" / "seq2seq"


def test_entry_scripts_are_executable_and_call_the_console_scripts():
    for name, target in (("train", "s2s-train"), ("serve", "s2s-serve")):
        script = CONTAINER / name
        assert os.access(script, os.X_OK), f"{script} must be executable"
        text = script.read_text()
        assert text.startswith("#!/bin/sh") and f"exec {target}" in text


def test_dockerfile_installs_the_project_with_the_algorithm_extra_and_puts_entry_points_on_path():
    text = (CONTAINER / "Dockerfile").read_text()
    base = next(line for line in text.splitlines() if line.startswith("FROM"))
    assert base.startswith("FROM pytorch/pytorch:") and "cuda" in base
    assert '".[algorithm]"' in text
    for path in ("s2s_aws", "containers/seq2seq/s2s_algorithm", "pyproject.toml"):
        assert f"COPY {path}" in text or f" {path} " in text
    assert "/usr/local/bin/" in text and "EXPOSE 8080" in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
    assert "s2s_aws" not in ignored and "containers" not in ignored


def test_train_entry_script_runs_the_training_program(tmp_path):
    # an empty /opt/ml: the real program answers with its failure file and exit code 2
    env = {**os.environ, "S2S_ML_ROOT": str(tmp_path),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run([str(CONTAINER / "train")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "'train' channel" in (tmp_path / "output" / "failure").read_text()
