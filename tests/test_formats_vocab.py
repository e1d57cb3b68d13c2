"""Vocabulary rules: specials, ordering and tie-break, min_count, top-N, shared, files."""
from __future__ import annotations

import json

import pytest

from s2s_aws.errors import FormatError, InputError
from s2s_aws.contract import vocab

SPECIALS = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3}


def test_specials():
    assert (vocab.PAD_ID, vocab.UNK_ID, vocab.BOS_ID, vocab.EOS_ID) == (0, 1, 2, 3)
    assert (vocab.PAD, vocab.UNK, vocab.BOS, vocab.EOS) == ("<pad>", "<unk>", "<s>", "</s>")
    assert vocab.build_vocab({}) == SPECIALS


def test_count_descending_ties_descending_code_points():
    counts = {"b": 2, "a": 2, "c": 2, "z": 5, "é": 1, "e": 1, "日": 1}
    v = vocab.build_vocab(counts)
    assert list(v)[4:] == ["z", "c", "b", "a", "日", "é", "e"]
    assert [v[w] for w in ["z", "c", "b", "a", "日", "é", "e"]] == list(range(4, 11))


def test_min_count_and_top_n():
    counts = {"a": 5, "b": 4, "c": 3, "d": 1}
    assert list(vocab.build_vocab(counts, min_count=3))[4:] == ["a", "b", "c"]
    assert list(vocab.build_vocab(counts, num_words=2))[4:] == ["a", "b"]
    assert list(vocab.build_vocab(counts, num_words=0))[4:] == []
    # top-N after min_count, ties broken before cutting
    assert list(vocab.build_vocab({"x": 2, "y": 2, "w": 2}, num_words=2))[4:] == ["y", "x"]
    with pytest.raises(InputError):
        vocab.build_vocab(counts, min_count=0)
    with pytest.raises(InputError):
        vocab.build_vocab(counts, num_words=-1)


def test_special_spelled_tokens_keep_special_ids():
    v = vocab.build_vocab({"<unk>": 10, "a": 1})
    assert v == {**SPECIALS, "a": 4}


def test_shared_vocab_counts_both_sides():
    src, trg = ["a a b"], ["b b c"]
    shared = vocab.count_tokens(src + trg)
    assert shared == {"a": 2, "b": 3, "c": 1}
    assert list(vocab.build_vocab(shared))[4:] == ["b", "a", "c"]


def test_count_tokens_whitespace():
    assert vocab.count_tokens(["a\tb  a\n", "  ", "c\u3000d"]) == {"a": 2, "b": 1, "c": 1, "d": 1}


def test_save_load_utf8(tmp_path):
    v = vocab.build_vocab({"猫": 3, "dog": 2})
    path = tmp_path / "vocab.src.json"
    vocab.save_vocab(v, path)
    text = path.read_text(encoding="utf-8")
    assert "猫" in text and "\\u" not in text
    assert vocab.load_vocab(path) == v
    assert list(json.loads(text).values()) == [0, 1, 2, 3, 4, 5]
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.src.json"]


def test_id_to_token_and_encode():
    v = vocab.build_vocab({"a": 2, "b": 1})
    assert vocab.id_to_token(v) == ["<pad>", "<unk>", "<s>", "</s>", "a", "b"]
    assert vocab.encode_tokens(["b", "a", "q"], v) == [5, 4, 1]


@pytest.mark.parametrize("content,message", [
    ("[1, 2]", "JSON object"),
    ("{bad", "not valid JSON"),
    ('{"<pad>": 0, "<unk>": 1, "<s>": 2}', "'</s>' must have id 3"),
    ('{"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "a": 3}', "share id 3"),
    ('{"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "a": 9}', "no gaps"),
    ('{"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "a": "4"}', "integer id"),
])
def test_load_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "v.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FormatError, match=message) as e:
        vocab.load_vocab(path)
    assert str(path) in str(e.value)


def test_load_missing_and_not_utf8(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        vocab.load_vocab(tmp_path / "nope.json")
    bad = tmp_path / "latin.json"
    bad.write_bytes(b'{"\xe9": 4}')
    with pytest.raises(FormatError, match="not UTF-8"):
        vocab.load_vocab(bad)
