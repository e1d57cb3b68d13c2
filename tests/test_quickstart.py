"""`s2s-aws quickstart`: the generated corpus, the corpus split, and the whole journey (--fast) for real."""
from __future__ import annotations

import os

import pytest

from s2s_aws.cli import main
from s2s_aws.local.corpus import generate_pairs, number_de, number_en, write_corpus
from s2s_aws.quickstart import _split_user_corpus, run_quickstart


@pytest.mark.parametrize("n, en, de", [
    (2, "two", "zwei"), (17, "seventeen", "siebzehn"), (21, "twenty one", "ein und zwanzig"),
    (40, "forty", "vierzig"), (101, "one hundred and one", "ein hundert eins"),
    (342, "three hundred and forty two", "drei hundert zwei und vierzig"), (900, "nine hundred", "neun hundert"),
])
def test_number_words(n, en, de):
    assert number_en(n) == en
    assert number_de(n) == de


def test_corpus_is_deterministic_and_test_sentences_are_held_out(tmp_path):
    assert generate_pairs(50, seed=4) == generate_pairs(50, seed=4)
    assert generate_pairs(50, seed=4) != generate_pairs(50, seed=5)
    files = write_corpus(tmp_path, num_train=500, num_dev=50, num_test=40, seed=2)
    train = set(files.train_source.read_text("utf-8").splitlines())
    test = files.test_source.read_text("utf-8").splitlines()
    assert len(test) == 40 and not train & set(test)
    assert len(files.train_target.read_text("utf-8").splitlines()) == 500


def test_user_corpus_split_keeps_pairs_aligned(tmp_path):
    src, trg = tmp_path / "a.src", tmp_path / "a.trg"
    src.write_text("".join(f"s{i}\n" for i in range(400)) + "\n", encoding="utf-8")
    trg.write_text("".join(f"t{i}\n" for i in range(400)) + "\n", encoding="utf-8")
    tr_s, tr_t, dv_s, dv_t, te_s, te_t = _split_user_corpus(src, trg, tmp_path / "out")
    for s_path, t_path in ((tr_s, tr_t), (dv_s, dv_t), (te_s, te_t)):
        pairs = list(zip(s_path.read_text().splitlines(), t_path.read_text().splitlines()))
        assert pairs and all(s[1:] == t[1:] for s, t in pairs)
    assert len(te_s.read_text().splitlines()) == 20
    trg.write_text("only one line\n", encoding="utf-8")
    with pytest.raises(Exception, match="line-aligned"):
        _split_user_corpus(src, trg, tmp_path / "out2")


def test_cli_wants_both_corpus_files(tmp_path, capsys):
    assert main(["quickstart", "--workdir", str(tmp_path), "--source", str(tmp_path / "x")]) == 2
    assert "--target" in capsys.readouterr().err


@pytest.mark.slow
def test_quickstart_fast_journey(tmp_path):
    lines: list[str] = []
    # children started earlier in this pytest process (e.g. the CDK's jsii node runtime) are not ours
    before = set(_live_children())
    result = run_quickstart(tmp_path / "qs", fast=True, out=lines.append)
    text = "\n".join(lines)
    for n in range(1, 9):
        assert f"[{n}/8]" in text
    assert "| #metric validation:perplexity=" in text  # the live training log went through CloudWatch Logs
    assert result.training_job.startswith("seq2seq-")
    assert result.metrics["validation:perplexity"] < 5.0  # it learned (a uniform guess is ~60)
    assert len(result.examples) == 5 and all(e["translation"] for e in result.examples)
    assert result.num_test == 100
    assert result.bleu is not None and result.bleu > 20.0
    with open(result.heatmap, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    kinds = sorted(d.split("/")[0] for d in result.deleted)
    assert kinds == ["endpoint", "endpoint-config", "model"]
    # the stack is stopped: no serve or train process of ours is left
    assert sorted(set(_live_children()) - before) == []


def _live_children() -> list[int]:
    """Pids of this process's children that are still running (not zombies), from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            pids.append(int(entry))
    return pids
