"""preprocess --subwords sentencepiece: a joint model beside the vocabularies, records as pieces."""
from __future__ import annotations

import json
import random

from s2s_aws.contract import layout
from s2s_aws.preprocess import preprocess

JA = ["猫が好きです", "犬が走ります", "私は学生です", "今日は天気がいい", "本を読みます", "水を飲みます"]
EN = ["I like cats.", "The dog runs.", "I am a student.", "The weather is nice today.", "I read a book.",
      "I drink water."]


def _corpus(tmp_path, n=300):
    rng = random.Random(0)
    idx = [rng.randrange(len(JA)) for _ in range(n)]
    (tmp_path / "tr.ja").write_text("".join(JA[i] + "\n" for i in idx), encoding="utf-8")
    (tmp_path / "tr.en").write_text("".join(EN[i] + "\n" for i in idx), encoding="utf-8")
    (tmp_path / "va.ja").write_text("".join(j + "\n" for j in JA), encoding="utf-8")
    (tmp_path / "va.en").write_text("".join(e + "\n" for e in EN), encoding="utf-8")


def _run(tmp_path, out):
    return preprocess(tmp_path / "tr.ja", tmp_path / "tr.en", tmp_path / "va.ja", tmp_path / "va.en",
                      output_dir=tmp_path / out, subwords="sentencepiece", vocab_size=60, workers=1)


def test_sentencepiece_writes_model_and_piece_vocab(tmp_path):
    import sentencepiece as spm

    _corpus(tmp_path)
    summary = _run(tmp_path, "a")
    model = tmp_path / "a" / layout.SUBWORD_MODEL_FILE
    assert model.is_file()
    vocab = json.loads((tmp_path / "a" / layout.SOURCE_VOCAB_FILE).read_text(encoding="utf-8"))
    sp = spm.SentencePieceProcessor(model_file=str(model))
    pieces = sp.encode("猫が好きです", out_type=str)
    assert all(p in vocab for p in pieces)
    assert any(k.startswith("▁") for k in vocab)
    assert summary.val.source_unk_rate == 0.0 and summary.val.target_unk_rate == 0.0
    assert summary.train.source_tokens > summary.train.pairs  # pieces, not whole sentences
    assert not list((tmp_path / "a").glob(".s2s-*"))


def test_sentencepiece_output_is_deterministic(tmp_path):
    _corpus(tmp_path)
    _run(tmp_path, "a")
    _run(tmp_path, "b")
    for name in layout.PREP_FILES + (layout.SUBWORD_MODEL_FILE,):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
