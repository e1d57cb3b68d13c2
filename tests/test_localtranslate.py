"""Local translation without a server (s2s_aws.localtranslate), with a tiny trained model."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from s2s_aws.errors import InputError
from s2s_aws.localtranslate import open_model_dir, translate_local

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from algo_utils import train_tiny_model

    return train_tiny_model(tmp_path_factory.mktemp("local-model"))


def test_translates_in_order_with_empty_and_unknown(model_dir):
    sentences = ["w1 w2 w3", "", "w4 zzz w5", "w9 w8"]
    results = translate_local(sentences, model_dir, beam_size=1)
    assert [r["source"] for r in results] == sentences
    assert results[1]["target"] == ""
    assert set(results[0]) == {"source", "target"}  # no matrix unless asked
    # the tiny model reverses sequences
    assert results[0]["target"] == "w3 w2 w1"
    assert results[3]["target"] == "w8 w9"
    # the same sentences one by one give the same answers
    alone = [translate_local([s], model_dir, beam_size=1)[0]["target"] for s in sentences]
    assert alone == [r["target"] for r in results]


def test_chunks_report_progress_and_change_nothing(model_dir, monkeypatch):
    import s2s_aws.localtranslate as lt

    sentences = ["w1 w2 w3", "", "w4 w5", "w9 w8", "w2", "w7 w6 w5 w4"]
    whole = [r["target"] for r in translate_local(sentences, model_dir, beam_size=2)]
    monkeypatch.setattr(lt, "CHUNK_SENTENCES", 2)
    seen = []
    chunked = translate_local(sentences, model_dir, beam_size=2, progress=lambda d, t: seen.append((d, t)))
    assert [r["target"] for r in chunked] == whole
    assert seen == [(2, 5), (4, 5), (5, 5)]          # the empty sentence needs no decoding


def test_json_output_has_tokens_and_matrix(model_dir):
    (r,) = translate_local(["w1 w2 w3 w4"], model_dir, json_output=True)
    assert r["tokens"] == r["target"].split()
    assert r["source_tokens"] == ["w1", "w2", "w3", "w4"]
    assert len(r["matrix"]) == len(r["tokens"])
    assert all(len(row) == 4 for row in r["matrix"])
    json.dumps(r)  # plain JSON types only


def test_attention_plot_of_the_first_sentence(model_dir, tmp_path):
    (r,) = translate_local(["w1 w2 w3"], model_dir, attention_plot=tmp_path / "att.png")
    assert r["attention_plot"] == str(tmp_path / "att.png")
    assert (tmp_path / "att.png").read_bytes().startswith(PNG_MAGIC)
    assert len(r["matrix"]) == len(r["target"].split())

    results = translate_local(["w1 w2", "w3 w4 w5"], model_dir, attention_plot=tmp_path / "many.png")
    assert results[0]["attention_plot"] == str(tmp_path / "many.png") and "attention_plot" not in results[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["att.png", "many.png"]
    assert all(len(r["matrix"][0]) == len(r["source"].split()) for r in results)
    assert "tokens" not in results[0]  # only with json_output

    with pytest.raises(InputError, match="empty translation"):
        translate_local(["", "w1"], model_dir, attention_plot=tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_model_tar_gz(model_dir, tmp_path):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in sorted(model_dir.iterdir()):
            tar.add(f, arcname=f.name)
    direct = translate_local(["w6 w7 w8"], model_dir, beam_size=2)
    assert translate_local(["w6 w7 w8"], archive, beam_size=2) == direct


def test_open_model_dir_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        with open_model_dir(tmp_path / "missing"):
            pass
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="neither a directory nor a tar archive"):
        with open_model_dir(junk):
            pass


def test_archive_with_unsafe_member_is_refused(tmp_path):
    import io

    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        data = b"x"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(InputError, match="cannot extract"):
        with open_model_dir(archive):
            pass
    assert not (tmp_path / "escape.txt").exists()


def test_bad_beam_size(model_dir):
    with pytest.raises(InputError, match="beam size"):
        translate_local(["w1"], model_dir, beam_size=0)
