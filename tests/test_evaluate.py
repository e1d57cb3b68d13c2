"""s2s-evaluate: decode a test set with a tiny trained model and score it with sacreBLEU."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from s2s_algorithm.evaluate import main, score_bleu, translate_lines
from s2s_aws.errors import InputError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from algo_utils import train_tiny_model

    return train_tiny_model(tmp_path_factory.mktemp("eval-model"))


@pytest.fixture(scope="module")
def test_set(tmp_path_factory) -> tuple[Path, Path]:
    from algo_utils import SYMBOLS, reverse_pairs

    d = tmp_path_factory.mktemp("testset")
    pairs = reverse_pairs(40, seed=99, max_len=6)
    src = [" ".join(SYMBOLS[i - 4] for i in s) for s, _ in pairs]
    ref = [" ".join(SYMBOLS[i - 4] for i in t) for _, t in pairs]
    src.insert(5, "")  # an empty line is kept, aligned, and translated as empty
    ref.insert(5, "")
    (d / "test.src").write_text("\n".join(src) + "\n", encoding="utf-8")
    (d / "test.ref").write_text("\n".join(ref) + "\n", encoding="utf-8")
    return d / "test.src", d / "test.ref"


def test_score_bleu_is_sacrebleu_with_no_tokenization():
    bleu, sig = score_bleu(["a b c d", "e f g h"], ["a b c d", "e f g h"])
    assert bleu == pytest.approx(100.0)
    assert "tok:none" in sig
    low, _ = score_bleu(["a b c d", "x y z w"], ["a b c d", "e f g h"])
    assert 0 < low < 100
    # tokenize='none': "a,b" is one token, so it cannot match "a" "," "b"
    none, _ = score_bleu(["a,b c d e"], ["a , b c d e"])
    assert none < 100


def test_evaluate_writes_bleu_and_hypotheses(model_dir, test_set, tmp_path, capsys):
    src, ref = test_set
    out = tmp_path / "eval"
    rc = main(["--model-dir", str(model_dir), "--source", str(src), "--reference", str(ref),
               "--output-dir", str(out), "--beam-size", "2", "--batch-size", "7"])
    assert rc == 0
    result = json.loads((out / "evaluation.json").read_text())
    assert set(result) == {"bleu", "signature", "num_sentences"}
    assert result["num_sentences"] == 41
    assert "tok:none" in result["signature"]
    hyps = (out / "hypotheses.txt").read_text(encoding="utf-8").split("\n")[:-1]
    refs = ref.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(hyps) == 41 and hyps[5] == ""
    # the reported score is the score of the written hypotheses
    assert result["bleu"] == pytest.approx(score_bleu(hyps, refs)[0], abs=1e-5)
    # the tiny model learned to reverse: far better than chance, and sane
    assert 30.0 < result["bleu"] <= 100.0
    assert "BLEU =" in capsys.readouterr().out


def test_evaluate_reads_model_tar_gz(model_dir, test_set, tmp_path):
    src, ref = test_set
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in sorted(model_dir.iterdir()):
            tar.add(f, arcname=f.name)
    out = tmp_path / "eval"
    proc = subprocess.run([str(Path(sys.executable).with_name("s2s-evaluate")), "--model-dir", str(archive),
                           "--source", str(src), "--reference", str(ref), "--output-dir", str(out),
                           "--beam-size", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "evaluation.json").read_text())["num_sentences"] == 41


def test_misaligned_files_exit_2(model_dir, test_set, tmp_path, capsys):
    src, _ = test_set
    short = tmp_path / "short.ref"
    short.write_text("w1\nw2\n")
    rc = main(["--model-dir", str(model_dir), "--source", str(src), "--reference", str(short),
               "--output-dir", str(tmp_path / "o")])
    assert rc == 2
    assert "line-aligned" in capsys.readouterr().err
    assert not (tmp_path / "o" / "evaluation.json").exists()


def test_bad_model_path_exit_2(test_set, tmp_path, capsys):
    src, ref = test_set
    junk = tmp_path / "model.tar.gz"
    junk.write_bytes(b"not a tarball")
    for model in (tmp_path / "missing", junk):
        rc = main(["--model-dir", str(model), "--source", str(src), "--reference", str(ref),
                   "--output-dir", str(tmp_path / "o")])
        assert rc == 2
        assert str(model) in capsys.readouterr().err


def test_translate_lines_batches_and_keeps_empty_lines():
    class Fake:
        def __init__(self):
            self.calls = []

        def translate(self, sentences, beam_size=None):
            self.calls.append(len(sentences))
            return [type("T", (), {"target": s.upper()})() for s in sentences]

    fake = Fake()
    lines = ["a", "", "b c", "d", "  ", "e"]
    assert translate_lines(fake, lines, batch_size=2) == ["A", "", "B C", "D", "", "E"]
    assert fake.calls == [2, 2]


def test_missing_source_is_input_error(tmp_path):
    from s2s_algorithm.evaluate import read_lines

    with pytest.raises(InputError, match="does not exist"):
        read_lines(tmp_path / "nope.txt")
