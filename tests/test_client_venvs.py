"""tests/client_venvs.py: an extra client venv is built once, reused while its requirements file is
unchanged, rebuilt when it changes, and a failed build leaves nothing half-made behind."""
from __future__ import annotations

import pytest

import client_venvs


@pytest.fixture
def clients(tmp_path, monkeypatch):
    folder = tmp_path / "clients"
    folder.mkdir()
    monkeypatch.setattr(client_venvs, "CLIENTS", folder)
    monkeypatch.setenv("S2S_CLIENT_VENVS", str(tmp_path / "venvs"))
    return folder


def test_built_once_then_reused_until_the_requirements_change(clients, tmp_path):
    req = clients / "tiny.requirements.txt"
    req.write_text("# nothing to install\n")
    bin_dir = client_venvs.client_venv("tiny")
    assert bin_dir == tmp_path / "venvs" / "tiny" / "bin" and (bin_dir / "python").exists()
    marker = bin_dir.parent / "marker"
    marker.write_text("built before")
    assert client_venvs.client_venv("tiny") == bin_dir
    assert marker.exists()  # reused, not rebuilt
    req.write_text("# nothing to install, edited\n")
    assert client_venvs.client_venv("tiny") == bin_dir
    assert not marker.exists()  # rebuilt from the changed file
    assert (bin_dir / "python").exists()


def test_a_failed_build_raises_with_pips_output_and_leaves_no_venv(clients, tmp_path):
    (clients / "broken.requirements.txt").write_text("./no-such-project-here\n")
    with pytest.raises(RuntimeError, match="no-such-project-here"):
        client_venvs.client_venv("broken")
    assert not (tmp_path / "venvs" / "broken").exists()


def test_an_unknown_name_lists_the_known_ones(clients):
    (clients / "sdk-v2.requirements.txt").write_text("")
    with pytest.raises(ValueError, match="known: sdk-v2"):
        client_venvs.client_venv("sdk-v9")
