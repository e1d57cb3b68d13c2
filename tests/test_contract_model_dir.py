"""contract/model_dir.py: the model directory's files, format check, model.tar.gz pack/unpack."""
from __future__ import annotations

import json
import os
import stat
import tarfile

import pytest

from s2s_aws.contract import layout, model_dir, vocab
from s2s_aws.errors import InputError


@pytest.fixture
def vocab_dir(tmp_path):
    d = tmp_path / "vocab"
    d.mkdir()
    vocab.save_vocab(vocab.build_vocab({"a": 2, "b": 1}), d / layout.SOURCE_VOCAB_FILE)
    vocab.save_vocab(vocab.build_vocab({"x": 1}), d / layout.TARGET_VOCAB_FILE)
    return d


def _write(tmp_path, vocab_dir, **info):
    return model_dir.write_model_dir(tmp_path / "model", lambda f: f.write(b"weights"),
                                     {"rnn_num_hidden": "8"}, vocab_dir, info)


def test_write_check_read_round_trip(tmp_path, vocab_dir):
    root = _write(tmp_path, vocab_dir, framework="test")
    assert sorted(p.name for p in root.iterdir()) == sorted(layout.MODEL_FILES)
    assert model_dir.check_model_dir(root) == {"format_version": model_dir.FORMAT_VERSION, "framework": "test"}
    assert model_dir.read_hyperparameters(root) == {"rnn_num_hidden": "8"}
    src, trg = model_dir.read_vocabularies(root)
    assert src == vocab.load_vocab(vocab_dir / layout.SOURCE_VOCAB_FILE) and len(trg) == 5
    for name in layout.VOCAB_FILES:  # copied byte for byte
        assert (root / name).read_bytes() == (vocab_dir / name).read_bytes()
    assert model_dir.weights_path(root).read_bytes() == b"weights"
    assert (root / layout.MODEL_FORMAT_FILE).read_text().endswith("}\n")


def test_check_names_missing_files_and_newer_formats(tmp_path, vocab_dir):
    root = _write(tmp_path, vocab_dir)
    (root / layout.MODEL_WEIGHTS_FILE).unlink()
    with pytest.raises(InputError, match="lacks model.pt"):
        model_dir.check_model_dir(root)
    root = _write(tmp_path, vocab_dir)
    (root / layout.MODEL_FORMAT_FILE).write_text(json.dumps({"format_version": model_dir.FORMAT_VERSION + 1}))
    with pytest.raises(InputError, match="format_version 2; this program reads version 1 or lower"):
        model_dir.check_model_dir(root)
    (root / layout.MODEL_FORMAT_FILE).write_text("{not json")
    with pytest.raises(InputError, match="is not valid JSON"):
        model_dir.check_model_dir(root)


def test_pack_then_open_gives_the_same_files(tmp_path, vocab_dir):
    root = _write(tmp_path, vocab_dir)
    archive = model_dir.pack_model_dir(root, tmp_path / layout.MODEL_ARCHIVE)
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(layout.MODEL_FILES)   # at the root, as SageMaker packs
    with model_dir.open_model_dir(archive) as d:
        assert {p.name: p.read_bytes() for p in d.iterdir()} == {p.name: p.read_bytes() for p in root.iterdir()}
        extracted = d
    assert not extracted.exists()   # the temporary folder is removed afterwards
    with model_dir.open_model_dir(root) as d:
        assert d == root


def test_container_model_files_get_normal_permissions(tmp_path, vocab_dir):
    """checkpoint.write_model_dir used mkstemp, so every model file was 0600."""
    torch = pytest.importorskip("torch")
    from s2s_algorithm.checkpoint import write_model_dir

    old = os.umask(0o022)
    try:
        write_model_dir(tmp_path / "m", {"w": torch.zeros(2)}, {"rnn_num_hidden": "8"}, vocab_dir, {"x": 1})
    finally:
        os.umask(old)
    for name in layout.MODEL_FILES:
        assert stat.S_IMODE(os.stat(tmp_path / "m" / name).st_mode) == 0o644, name
    fmt = model_dir.check_model_dir(tmp_path / "m")
    assert fmt["framework"] == "pytorch" and fmt["torch_version"] == torch.__version__ and fmt["x"] == 1
