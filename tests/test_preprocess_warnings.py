"""preprocess warns when the corpus looks untokenized (and says to use --subwords sentencepiece)."""
from __future__ import annotations

import json
import random

from s2s_aws.cli import main
from s2s_aws.preprocess import preprocess

from test_subwords import _corpus


def test_raw_japanese_warns_and_tokenized_text_does_not(tmp_path):
    _corpus(tmp_path)
    raw = preprocess(tmp_path / "tr.ja", tmp_path / "tr.en", tmp_path / "va.ja", tmp_path / "va.en",
                     output_dir=tmp_path / "raw", workers=1)
    assert any("source" in w and "--subwords sentencepiece" in w for w in raw.warnings)
    rng = random.Random(1)
    words = [f"w{i}" for i in range(30)]
    lines = "".join(" ".join(rng.choice(words) for _ in range(6)) + "\n" for _ in range(300))
    (tmp_path / "a.txt").write_text(lines)
    (tmp_path / "b.txt").write_text(lines)
    clean = preprocess(tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "a.txt", tmp_path / "b.txt",
                       output_dir=tmp_path / "tok", workers=1)
    assert clean.warnings == []
    pieces = preprocess(tmp_path / "tr.ja", tmp_path / "tr.en", tmp_path / "va.ja", tmp_path / "va.en",
                        output_dir=tmp_path / "sp", workers=1, subwords="sentencepiece", vocab_size=60)
    assert not any("unknown" in w for w in pieces.warnings)


def test_cli_json_reports_warnings_and_subwords(tmp_path, capsys):
    _corpus(tmp_path)
    base = ["preprocess", "-ts", str(tmp_path / "tr.ja"),
            "-tt", str(tmp_path / "tr.en"), "-vs", str(tmp_path / "va.ja"), "-vt", str(tmp_path / "va.en"),
            "--workers", "1"]
    assert main(base + ["--output-dir", str(tmp_path / "raw"), "--json"]) == 0
    r = capsys.readouterr()
    assert json.loads(r.out)["warnings"]
    assert "warning:" in r.err and "--subwords sentencepiece" in r.err
    assert main(base + ["--output-dir", str(tmp_path / "sp"), "--subwords", "sentencepiece",
                        "--vocab-size", "60", "--json"]) == 0
    r = capsys.readouterr()
    assert (tmp_path / "sp" / "spm.model").is_file()
    assert "subword_model" in json.loads(r.out)["files"]
