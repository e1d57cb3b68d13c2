"""preprocess(): the contract's rules, compared with a plain reference implementation."""
from __future__ import annotations

import gzip
import importlib
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from s2s_aws.errors import InputError
from s2s_aws.contract import records, vocab
from s2s_aws.preprocess import EXTRA_WHITESPACE, normalize_chunk, preprocess


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="\n") as f:
        return list(f)


def reference(ts: Path, tt: Path, vs: Path | None = None, vt: Path | None = None, *, num_words=50000,
              min_count=1, single=False):
    """The rules written the obvious way: str.split, Counter, one pair at a time."""
    src_lines, trg_lines = _lines(ts), _lines(tt)
    src_counts = Counter(t for line in src_lines for t in line.split())
    trg_counts = Counter(t for line in trg_lines for t in line.split())
    if single:
        sv = tv = vocab.build_vocab(src_counts + trg_counts, num_words, min_count)
    else:
        sv = vocab.build_vocab(src_counts, num_words, min_count)
        tv = vocab.build_vocab(trg_counts, num_words, min_count)

    def pairs(s_lines, t_lines):
        return [(vocab.encode_tokens(s.split(), sv), vocab.encode_tokens(t.split(), tv))
                for s, t in zip(s_lines, t_lines) if s.split() and t.split()]

    val = pairs(_lines(vs), _lines(vt)) if vs else None
    return sv, tv, pairs(src_lines, trg_lines), val


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


TRICKY_SRC = ("the cat sat\r\n"
              "the\u3000dog\xa0ran  \t fast\n"
              "   \n"                       # blank source: skipped
              "naïve café \x1cthe\n"
              "keep\n").encode("utf-8") + b"bad \xff\xfebytes here\n" + "last line no newline".encode()
TRICKY_TRG = ("le chat\n"
              "le chien court\n"
              "quelque chose\n"
              "\n"                          # blank target: skipped
              "garder\n"
              "mauvais \u2003octets\n"
              "dernière").encode("utf-8")


def test_extra_whitespace_is_exactly_str_split_whitespace():
    expected = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()} - set(" \t\n\r\x0b\x0c")
    assert set(EXTRA_WHITESPACE) == expected


def test_normalize_chunk():
    assert normalize_chunk(b"a\xffb\n") == "a\ufffdb\n".encode()
    assert normalize_chunk("x\u3000y\u2003z\x1dw\n".encode()).split() == [b"x", b"y", b"z", b"w"]
    assert normalize_chunk("\u2019quote\u2019\n".encode()) == "\u2019quote\u2019\n".encode()


@pytest.mark.parametrize("workers", [1, 2])
def test_tricky_text_matches_reference(tmp_path, workers):
    ts, tt = write(tmp_path / "s.txt", TRICKY_SRC), write(tmp_path / "t.txt", TRICKY_TRG)
    out = tmp_path / "out"
    summary = preprocess(ts, tt, ts, tt, output_dir=out, workers=workers, chunk_bytes=16)
    sv, tv, train, val = reference(ts, tt, ts, tt)
    assert vocab.load_vocab(out / "vocab.src.json") == sv
    assert vocab.load_vocab(out / "vocab.trg.json") == tv
    assert list(records.read_pairs(out / "train.rec")) == train
    assert list(records.read_pairs(out / "val.rec")) == val
    assert "\ufffd\ufffdbytes" in sv and "dog" in sv and "\u3000" not in "".join(sv)
    assert summary.train.pairs == 5 and summary.train.skipped == 2
    assert summary.val.pairs == 5
    assert summary.train.source_unk == 0
    assert summary.max_source_len == 4 and summary.max_target_len == 3
    assert sorted(p.name for p in out.iterdir()) == ["train.rec", "val.rec", "vocab.src.json", "vocab.trg.json"]


def _corpus(tmp_path: Path, n: int = 300) -> tuple[Path, Path]:
    src = [" ".join(f"w{(i * 7 + k) % 23}" for k in range(1 + i % 5)) for i in range(n)]
    trg = [" ".join(f"t{(i * 3 + k) % 17}" for k in range(1 + i % 4)) for i in range(n)]
    src[10] = ""
    return (write(tmp_path / "train.src", "\n".join(src) + "\n"), write(tmp_path / "train.trg", "\n".join(trg) + "\n"))


def test_two_workers_keep_order_byte_for_byte(tmp_path):
    ts, tt = _corpus(tmp_path)
    one = preprocess(ts, tt, output_dir=tmp_path / "one", workers=1)
    two = preprocess(ts, tt, output_dir=tmp_path / "two", workers=2, chunk_bytes=64)
    for name in ("train.rec", "vocab.src.json", "vocab.trg.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert one.train.pairs == two.train.pairs == 299
    _, _, expected, _ = reference(ts, tt)
    assert list(records.read_pairs(tmp_path / "two" / "train.rec")) == expected
    assert not (tmp_path / "one" / "val.rec").exists()


def test_gz_input(tmp_path):
    ts, tt = _corpus(tmp_path)
    gs = write(tmp_path / "train.src.gz", gzip.compress(ts.read_bytes()))
    preprocess(gs, tt, gs, tt, output_dir=tmp_path / "gz", workers=1)
    preprocess(ts, tt, ts, tt, output_dir=tmp_path / "plain", workers=1)
    for name in ("train.rec", "val.rec", "vocab.src.json"):
        assert (tmp_path / "gz" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()


def test_corrupt_gz_is_a_clear_error(tmp_path):
    ts, tt = _corpus(tmp_path)
    gs = write(tmp_path / "bad.gz", gzip.compress(ts.read_bytes())[:40])
    with pytest.raises(InputError, match="bad.gz"):
        preprocess(gs, tt, output_dir=tmp_path / "out", workers=1)


def test_limits_and_single_vocab(tmp_path):
    ts, tt = _corpus(tmp_path)
    preprocess(ts, tt, output_dir=tmp_path / "a", workers=1, num_words_source=5, min_count_target=40)
    sv, _, _, _ = reference(ts, tt, num_words=5)
    _, tv, _, _ = reference(ts, tt, min_count=40)
    assert vocab.load_vocab(tmp_path / "a" / "vocab.src.json") == sv and len(sv) == 9
    assert vocab.load_vocab(tmp_path / "a" / "vocab.trg.json") == tv

    summary = preprocess(ts, tt, output_dir=tmp_path / "b", workers=2, single_vocab=True, chunk_bytes=100)
    shared, _, pairs, _ = reference(ts, tt, single=True)
    assert vocab.load_vocab(tmp_path / "b" / "vocab.src.json") == shared
    assert (tmp_path / "b" / "vocab.src.json").read_bytes() == (tmp_path / "b" / "vocab.trg.json").read_bytes()
    assert list(records.read_pairs(tmp_path / "b" / "train.rec")) == pairs
    assert summary.source_vocab_size == summary.target_vocab_size == len(shared) == 4 + 23 + 17


def test_vocab_reuse(tmp_path):
    ts, tt = _corpus(tmp_path)
    given = {**dict(zip(vocab.SPECIALS, range(4))), "w1": 4, "w2": 5}
    vocab.save_vocab(given, tmp_path / "given.json")
    summary = preprocess(ts, tt, output_dir=tmp_path / "out", workers=1, vocab_source_json=tmp_path / "given.json")
    assert vocab.load_vocab(tmp_path / "out" / "vocab.src.json") == given
    pairs = list(records.read_pairs(tmp_path / "out" / "train.rec"))
    assert {i for s, _ in pairs for i in s} == {1, 4, 5}
    assert summary.vocab_reused == {"source": True, "target": False}
    assert 0.8 < summary.train.source_unk_rate < 1.0
    # with --single-vocab one given file serves both sides
    preprocess(ts, tt, output_dir=tmp_path / "one", workers=1, single_vocab=True,
               vocab_target_json=tmp_path / "given.json")
    assert vocab.load_vocab(tmp_path / "one" / "vocab.src.json") == given


@pytest.mark.parametrize("case", ["train-source-longer", "train-target-longer", "val-target-longer",
                                  "reused-vocab-source-longer"])
def test_mismatched_line_counts(tmp_path, case):
    ts, tt = _corpus(tmp_path, 50)
    short = write(tmp_path / "short.txt", "a b\n" * 49)
    out = tmp_path / "out"
    out.mkdir()
    write(out / "train.rec", b"previous")
    kwargs: dict = {"output_dir": out, "workers": 2, "chunk_bytes": 32}
    if case == "train-source-longer":
        args, longer, shorter = (ts, short), ts, short
    elif case == "train-target-longer":
        args, longer, shorter = (short, tt), tt, short
    elif case == "val-target-longer":
        args, longer, shorter = (ts, tt, short, tt), tt, short
    else:
        vocab.save_vocab(vocab.build_vocab({"a": 1}), tmp_path / "v.json")
        kwargs.update(vocab_source_json=tmp_path / "v.json", vocab_target_json=tmp_path / "v.json")
        args, longer, shorter = (ts, short), ts, short
    with pytest.raises(InputError) as e:
        preprocess(*args, **kwargs)
    message = str(e.value)
    assert f"{longer} is longer by 1 line(s) than {shorter}" in message
    assert "50" in message and "49" in message
    assert ("validation" in message) == case.startswith("val")
    assert sorted(p.name for p in out.iterdir()) == ["train.rec"]  # nothing half-written, nothing replaced
    assert (out / "train.rec").read_bytes() == b"previous"


def test_bad_arguments(tmp_path):
    ts, tt = _corpus(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        preprocess(tmp_path / "nope", tt, output_dir=tmp_path)
    with pytest.raises(InputError, match="-vs and -vt"):
        preprocess(ts, tt, ts, output_dir=tmp_path)
    with pytest.raises(InputError, match="workers"):
        preprocess(ts, tt, output_dir=tmp_path, workers=0)
    blank = write(tmp_path / "blank.txt", "\n" * 300)
    with pytest.raises(InputError, match="no usable training pairs"):
        preprocess(blank, tt, output_dir=tmp_path / "b", workers=1)
    assert not (tmp_path / "b" / "train.rec").exists()


def test_progress_callback(tmp_path):
    ts, tt = _corpus(tmp_path)
    messages: list[str] = []
    module = importlib.import_module("s2s_aws.preprocess.api")  # where preprocess() makes its _Progress

    module_progress = module._Progress
    try:
        module._Progress = lambda fn: module_progress(fn, interval=0.0)  # report every chunk
        preprocess(ts, tt, output_dir=tmp_path / "out", workers=1, chunk_bytes=256, progress=messages.append)
    finally:
        module._Progress = module_progress
    assert any("reading train pairs" in m for m in messages)
    assert any("writing train records" in m for m in messages)


def test_cli_preprocess(tmp_path, capsys):
    from s2s_aws.cli import main

    ts, tt = _corpus(tmp_path)
    rc = main(["preprocess", "-ts", str(ts), "-tt", str(tt), "-vs", str(ts), "-vt", str(tt),
               "--output-dir", str(tmp_path / "out"), "--workers", "1", "--num-words-source", "3",
               "--word-min-count-target", "2"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "train: 299 pairs written, 1 skipped" in out
    assert len(vocab.load_vocab(tmp_path / "out" / "vocab.src.json")) == 7
    rc = main(["preprocess", "-ts", str(ts), "-tt", str(tt), "--output-dir", str(tmp_path / "j"), "--json",
               "--single-vocab", "--workers", "2"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["train"]["pairs"] == 299 and report["val"] is None
    assert report["source_vocab_size"] == report["target_vocab_size"] == 44
    rc = main(["preprocess", "-ts", str(tmp_path / "missing"), "-tt", str(tt)])
    assert rc == 2
    assert "missing does not exist" in capsys.readouterr().err


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list(EXTRA_WHITESPACE) + [" ", "\n"])))
def test_normalized_bytes_split_like_str_split(text):
    assert normalize_chunk(text.encode("utf-8")).split() == [t.encode("utf-8") for t in text.split()]


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_invalid_utf8_tokens_like_replace_decoding(data):
    expected = [t.encode("utf-8") for t in data.decode("utf-8", "replace").split()]
    assert normalize_chunk(data).split() == expected
