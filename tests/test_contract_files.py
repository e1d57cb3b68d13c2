"""contract/_files.py: the one atomic write (temp beside the target, fsync, rename, normal permissions)."""
from __future__ import annotations

import json
import os
import stat

import pytest

from s2s_aws.contract import _files
from s2s_aws.contract import recordio, vocab


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_get_normal_permissions_not_mkstemp_0600(tmp_path, umask_022):
    _files.write_bytes_atomic(tmp_path / "a.bin", b"x")
    _files.write_text_atomic(tmp_path / "b.txt", "y")
    _files.write_json_atomic(tmp_path / "c.json", {"k": 1})
    with recordio.RecordIOWriter(tmp_path / "d.rec") as w:
        w.write(b"payload")
    vocab.save_vocab(vocab.build_vocab({"a": 1}), tmp_path / "e.json")
    for name in ("a.bin", "b.txt", "c.json", "d.rec", "e.json"):
        assert _mode(tmp_path / name) == 0o644, name


def test_every_write_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    _files.write_bytes_atomic(tmp_path / "a.bin", b"x")
    with recordio.RecordIOWriter(tmp_path / "b.rec") as w:
        w.write(b"p")
    vocab.save_vocab(vocab.build_vocab({"a": 1}), tmp_path / "c.json")
    assert events == ["fsync", "replace"] * 3


def test_a_failed_write_leaves_the_target_and_no_temp_file(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with _files.atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_text_json_and_mkdir(tmp_path):
    target = tmp_path / "new" / "dir" / "e.json"
    _files.write_json_atomic(target, {"bleu": 1.5, "s": "日本"}, mkdir=True, ensure_ascii=False)
    assert target.read_bytes() == '{"bleu": 1.5, "s": "日本"}\n'.encode()
    assert json.loads(target.read_text(encoding="utf-8")) == {"bleu": 1.5, "s": "日本"}
    with pytest.raises(ValueError, match="mode"):
        with _files.atomic_write(tmp_path / "x", "a"):
            pass


def test_the_old_module_names_re_export_the_contract():
    """s2s_aws.formats.* and s2s_aws.metrics stay importable while users move to s2s_aws.contract."""
    import importlib

    for old, new in [("s2s_aws.formats.recordio", "s2s_aws.contract.recordio"),
                     ("s2s_aws.formats.records", "s2s_aws.contract.records"),
                     ("s2s_aws.formats.record_pb2", "s2s_aws.contract.record_pb2"),
                     ("s2s_aws.formats.vocab", "s2s_aws.contract.vocab"),
                     ("s2s_aws.formats._files", "s2s_aws.contract._files"),
                     ("s2s_aws.metrics", "s2s_aws.contract.metrics")]:
        o, n = importlib.import_module(old), importlib.import_module(new)
        assert o.__all__ == n.__all__ and all(getattr(o, name) is getattr(n, name) for name in n.__all__), old
