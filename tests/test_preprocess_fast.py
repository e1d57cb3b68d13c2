"""The vectorized machinery of preprocess() against plain Python: tokenizer, hash table, ranking, encoder."""
from __future__ import annotations

import gzip
import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from s2s_aws.contract import recordio, records, vocab
from s2s_aws.preprocess import chunks, keytable, normalize, ranking, tokens as tokenizing
from s2s_aws.preprocess import EXTRA_WHITESPACE, normalize_chunk, preprocess

from test_preprocess import reference, write

# pieces that stress the tokenizer: token lengths around the 8- and 15-byte packing limits, NUL bytes,
# prefixes of one another, multi-byte characters, every kind of whitespace, invalid UTF-8
PIECES = ["a", "ab", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghijklmno", "abcdefghijklmnop",
          "abcdefghijklmnopqrstuvwxyz0123", "a\x00", "\x00", "\x00\x00", "の", "のに", "のにはを",
          "のにはをた", "\u2019", "<unk>", "<s>", "x"]
SPACES = [" ", "  ", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u3000", "\u2003",
          "\u2028", "\u205f", "\u1680"]


def text_lines() -> st.SearchStrategy[list[str]]:
    token = st.sampled_from(PIECES) | st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"),
                                              max_size=20)
    line = st.lists(st.tuples(token, st.sampled_from(SPACES)), max_size=8).map(
        lambda parts: "".join(t + s for t, s in parts))
    return st.lists(line, min_size=1, max_size=25)


def encode_lines(lines: list[str], junk: bytes, final_newline: bool) -> bytes:
    data = ("\n".join(lines) + ("\n" if final_newline or not lines[-1] else "")).encode("utf-8")
    return data.replace(b"x", junk) if junk else data  # "x" becomes undecodable bytes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(src=text_lines(), trg=text_lines(), junk=st.sampled_from([b"", b"\xff", b"\xe3\x80", b" \xc2"]),
       chunk=st.sampled_from([1, 7, 64, 1 << 20]), single=st.booleans(), limits=st.booleans(),
       final=st.booleans())
def test_preprocess_matches_reference(tmp_path_factory, src, trg, junk, chunk, single, limits, final):
    n = min(len(src), len(trg))
    tmp = tmp_path_factory.mktemp("p")
    ts = write(tmp / "s", encode_lines(src[:n], junk, final))
    tt = write(tmp / "t", encode_lines(trg[:n], junk, not final))
    kwargs = dict(num_words=3, min_count=2) if limits else {}
    sv, tv, pairs, _ = reference(ts, tt, single=single, **kwargs)
    if not pairs:
        with pytest.raises(Exception, match="no usable training pairs"):
            preprocess(ts, tt, output_dir=tmp / "out", workers=1, chunk_bytes=chunk, single_vocab=single,
                       **({"num_words_source": 3, "num_words_target": 3, "min_count_source": 2,
                           "min_count_target": 2} if limits else {}))
        return
    preprocess(ts, tt, output_dir=tmp / "out", workers=1, chunk_bytes=chunk, single_vocab=single,
               **({"num_words_source": 3, "num_words_target": 3, "min_count_source": 2,
                   "min_count_target": 2} if limits else {}))
    assert vocab.load_vocab(tmp / "out" / "vocab.src.json") == sv
    assert vocab.load_vocab(tmp / "out" / "vocab.trg.json") == tv
    assert list(records.read_pairs(tmp / "out" / "train.rec")) == pairs


def _random_corpus(rng: random.Random, lines: int) -> str:
    words = [rng.choice(PIECES) + str(rng.randrange(50)) * rng.randrange(3) for _ in range(300)]
    return "\n".join(" ".join(rng.choice(words) for _ in range(rng.randrange(0, 9))) for _ in range(lines))


@pytest.mark.parametrize("workers", [1, 2])
def test_windows_slices_and_gzip(tmp_path, monkeypatch, workers):
    """Lines cut across newline windows, chunks read by offset, one side gzipped, no final newline."""
    monkeypatch.setattr(chunks, "_WINDOW", 5)
    rng = random.Random(7)
    ts = write(tmp_path / "s", _random_corpus(rng, 400))
    tt = write(tmp_path / "t.gz", gzip.compress(_random_corpus(rng, 400).encode()))
    vs = write(tmp_path / "vs", _random_corpus(rng, 30) + "\n")
    vt = write(tmp_path / "vt", _random_corpus(rng, 30))
    preprocess(ts, tt, vs, vt, output_dir=tmp_path / "out", workers=workers, chunk_bytes=300)
    sv, tv, train, val = reference(ts, tt, vs, vt)
    assert vocab.load_vocab(tmp_path / "out" / "vocab.src.json") == sv
    assert vocab.load_vocab(tmp_path / "out" / "vocab.trg.json") == tv
    assert list(records.read_pairs(tmp_path / "out" / "train.rec")) == train
    assert list(records.read_pairs(tmp_path / "out" / "val.rec")) == val
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["train.rec", "val.rec", "vocab.src.json", "vocab.trg.json"]  # no spill files left behind


def test_reused_vocab_two_workers(tmp_path):
    rng = random.Random(3)
    ts, tt = write(tmp_path / "s", _random_corpus(rng, 300)), write(tmp_path / "t", _random_corpus(rng, 300))
    sv, tv, pairs, _ = reference(ts, tt, num_words=20)
    vocab.save_vocab(sv, tmp_path / "sv.json")
    vocab.save_vocab(tv, tmp_path / "tv.json")
    summary = preprocess(ts, tt, output_dir=tmp_path / "out", workers=2, chunk_bytes=200,
                         vocab_source_json=tmp_path / "sv.json", vocab_target_json=tmp_path / "tv.json")
    assert list(records.read_pairs(tmp_path / "out" / "train.rec")) == pairs
    unk = sum(i == vocab.UNK_ID for s, _ in pairs for i in s)
    assert summary.train.source_unk == unk > 0


def test_key_table_ids_are_consistent_through_growth_and_rebuilds():
    rng = np.random.default_rng(0)
    table = keytable._KeyTable(bits=4)  # tiny: many collisions, several doublings
    seen: dict[tuple[int, int], int] = {}
    counts = np.zeros(0, dtype=np.int64)
    for round_ in range(12):
        # few distinct values of k1, so that keys often share a home slot; k2 never 0
        k1 = rng.integers(0, 50, 3000).astype(np.uint64) * np.uint64(0x1000000000001)
        k2 = rng.integers(1, 4, 3000).astype(np.uint64) << np.uint64(56)
        ids = table.ids(k1, k2)
        for a, b, i in zip(k1.tolist(), k2.tolist(), ids.tolist()):
            assert seen.setdefault((a, b), i) == i
        assert sorted(set(seen.values())) == list(range(table.n)) == list(range(len(seen)))
        counts = np.concatenate([counts, np.zeros(table.n - counts.size, dtype=np.int64)])
        counts += np.bincount(ids, minlength=table.n)
        if round_ % 3 == 2:
            table.rebuild(counts)
    assert table.n == len(seen) and 2 * table.n <= table.mask + 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=24).filter(lambda b: not any(c in b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f" for c in b)),
                min_size=1, max_size=40))
def test_side_index_round_trips_tokens(tokens):
    tokens = [t for t in tokens if t]
    chunk = b" ".join(tokens) + b"\n"
    index = tokenizing._SideIndex()
    for _ in range(2):  # the second pass finds every token
        local, lines = index.local_ids(chunk)
        assert lines.tolist() == [len(tokens)]
        names = index.tokens()
        assert [names[i] for i in local.tolist()] == tokens
    assert len(names) == len(set(tokens))


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.sampled_from(PIECES) | st.text(max_size=18).filter(lambda w: w and not any(
            c.isspace() for c in w)), min_size=1, max_size=60),
       num_words=st.integers(0, 12), min_count=st.integers(1, 3))
def test_rank_matches_build_vocab(words, num_words, min_count):
    counts = Counter(words)
    index = tokenizing._SideIndex()
    index.count(index.local_ids(normalize_chunk(" ".join(words).encode() + b"\n"))[0])
    v, ids = ranking._rank(index, num_words, min_count)
    expected = vocab.build_vocab(counts, num_words, min_count)
    assert v == expected and list(v) == list(expected)  # same ids, same order
    names = index.tokens()
    assert [int(i) for i in ids] == [expected.get(t.decode(), vocab.UNK_ID) for t in names]


def test_has_multibyte_whitespace_exhaustive():
    """Every character whose UTF-8 starts with one of the lead bytes the check looks at."""
    for code in list(range(0x80, 0x800)) + list(range(0x1000, 0x4000)):
        char = chr(code)
        if 0xD800 <= code < 0xE000:
            continue
        found = normalize._has_multibyte_whitespace(("a" + char + "b\n").encode())
        assert found == (char in EXTRA_WHITESPACE), hex(code)
    assert not normalize._has_multibyte_whitespace(b"") and not normalize._has_multibyte_whitespace(b"\xc2")


def test_extra_whitespace_byte_patterns_cover_str_split():
    for char in EXTRA_WHITESPACE:
        assert normalize_chunk(("a" + char + "b").encode()).split() == [b"a", b"b"], hex(ord(char))
    for char in "\ufffd\u200b\u180e\ufeff\u3001":  # look like spaces, are not whitespace for str.split
        assert normalize_chunk(("a" + char + "b").encode()).split() == [("a" + char + "b").encode()]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 2**31 - 1) | st.integers(0, 300), max_size=6),
                          st.lists(st.integers(0, 2**31 - 1) | st.integers(0, 300), max_size=6)),
                min_size=1, max_size=12))
def test_encode_pairs_framed_equals_encode_pair(pairs):
    s_ids = np.array([i for s, _ in pairs for i in s], dtype=np.int64)
    t_ids = np.array([i for _, t in pairs for i in t], dtype=np.int64)
    data = records.encode_pairs_framed(s_ids, [len(s) for s, _ in pairs], t_ids, [len(t) for _, t in pairs])
    assert data == recordio.encode_records([records.encode_pair(s, t) for s, t in pairs])
    assert recordio.decode_records(data) == [records.encode_pair(s, t) for s, t in pairs]


def test_encode_pairs_framed_long_sequences():
    rng = np.random.default_rng(1)
    lengths = np.array([0, 1, 200, 5000, 3, 0])
    s_ids = rng.integers(0, 70000, lengths.sum())
    t_ids = rng.integers(0, 2**31, lengths[::-1].sum())
    data = records.encode_pairs_framed(s_ids, lengths, t_ids, lengths[::-1])
    s_off, t_off = np.r_[0, np.cumsum(lengths)], np.r_[0, np.cumsum(lengths[::-1])]
    assert recordio.decode_records(data) == [
        records.encode_pair(s_ids[s_off[i]:s_off[i + 1]].tolist(), t_ids[t_off[i]:t_off[i + 1]].tolist())
        for i in range(lengths.size)]


def test_public_names_stay_importable_from_the_package():
    import s2s_aws.preprocess as package

    for name in ("preprocess", "PreprocessSummary", "SplitStats", "ProgressFn", "OUTPUT_FILES", "DEFAULT_CHUNK_BYTES",
                 "EXTRA_WHITESPACE", "normalize_chunk"):
        assert name in package.__all__ and getattr(package, name) is not None, name


def test_spawned_workers_write_the_same_bytes(tmp_path):
    """With another thread running, the pool starts its workers with spawn (fork is unsafe then): each
    worker gets its state from the initializer, every broadcast reaches every worker, and the files are
    byte-identical to an inline run's."""
    import threading

    rng = random.Random(11)
    ts, tt = write(tmp_path / "s", _random_corpus(rng, 600)), write(tmp_path / "t", _random_corpus(rng, 600))
    vs, vt = write(tmp_path / "vs", _random_corpus(rng, 40)), write(tmp_path / "vt", _random_corpus(rng, 40))
    preprocess(ts, tt, vs, vt, output_dir=tmp_path / "inline", workers=1)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        summary = preprocess(ts, tt, vs, vt, output_dir=tmp_path / "spawn", workers=3, chunk_bytes=400)
    finally:
        stop.set()
        other.join()
    assert summary.workers == 3
    for name in ("train.rec", "val.rec", "vocab.src.json", "vocab.trg.json"):
        assert (tmp_path / "spawn" / name).read_bytes() == (tmp_path / "inline" / name).read_bytes(), name
    assert sorted(p.name for p in (tmp_path / "spawn").iterdir()) == \
        ["train.rec", "val.rec", "vocab.src.json", "vocab.trg.json"]


def test_runner_broadcast_runs_once_per_worker_and_a_failed_close_breaks_the_barrier():
    from s2s_aws.preprocess import runner, work

    r = runner._Runner(3)
    barrier = r._barrier
    try:
        pids = [pid for pid, _ in r.broadcast(work._flush_index)]
        assert len(set(pids)) == 3
    finally:
        r.close(ok=False)
    assert barrier.broken  # a worker left waiting in a broadcast would stop waiting
