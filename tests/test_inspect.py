"""s2s-aws inspect: summaries, --head --json, vocabularies, and exit code 2 on bad files."""
from __future__ import annotations

import json

from s2s_aws.cli import main
from s2s_aws.contract import recordio, records, vocab
from s2s_aws.inspection import inspect_path

PAIRS = [([4, 5, 6], [7]), ([8], [9, 10]), ([4] * 10, [5] * 4)]


def _rec(tmp_path):
    path = tmp_path / "train.rec"
    records.write_pairs(path, PAIRS)
    return path


def test_inspect_records_summary(tmp_path, capsys):
    path = _rec(tmp_path)
    report = inspect_path(path)
    assert report["records"] == 3
    assert report["features"]["source"]["max"] == 10 and report["features"]["source"]["min"] == 1
    assert report["features"]["target"]["tokens"] == 7 and report["features"]["target"]["max_id"] == 10
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 records" in out and "max 10" in out


def test_head_json_lines(tmp_path, capsys):
    path = _rec(tmp_path)
    assert main(["inspect", str(path), "--head", "2", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [{"source": s, "target": t} for s, t in PAIRS[:2]]
    assert main(["inspect", str(path), "--head", "1"]) == 0
    assert "source: 4 5 6  target: 7" in capsys.readouterr().out


def test_inspect_vocab(tmp_path, capsys):
    path = tmp_path / "vocab.src.json"
    vocab.save_vocab(vocab.build_vocab({"猫": 2, "dog": 1}), path)
    assert main(["inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size"] == 6 and report["specials"] == {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3}
    assert report["first_words"] == ["猫", "dog"]


def test_bad_files_exit_2(tmp_path, capsys):
    good = _rec(tmp_path)
    truncated = tmp_path / "cut.rec"
    data = good.read_bytes()
    truncated.write_bytes(data[:-6])
    assert main(["inspect", str(truncated)]) == 2
    err = capsys.readouterr().err
    assert str(truncated) in err and "truncated" in err and "byte offset" in err

    text = tmp_path / "notes.txt"
    text.write_text("hello world\n")
    assert main(["inspect", str(text)]) == 2
    assert "neither a RecordIO file" in capsys.readouterr().err

    badvocab = tmp_path / "v.json"
    badvocab.write_text('{"a": 0}')
    assert main(["inspect", str(badvocab)]) == 2
    assert "'<pad>'" in capsys.readouterr().err

    notrecord = tmp_path / "x.rec"
    notrecord.write_bytes(recordio.frame(b"\xff\xff"))
    assert main(["inspect", str(notrecord), "--head", "1", "--json"]) == 2
    assert "record 0" in capsys.readouterr().err

    assert main(["inspect", str(tmp_path / "missing.rec")]) == 2


def test_record_with_a_key_that_is_not_utf8_is_one_line_and_exit_2(tmp_path, capsys):
    """Issue 19 item 8: it was a UnicodeDecodeError traceback."""
    key = b"sourc\xff"
    entry = b"\x0a" + bytes([len(key)]) + key + b"\x12\x05\x3a\x03\x0a\x01\x04"
    payload = records.encode_pair([4], [5]) + b"\x0a" + bytes([len(entry)]) + entry
    path = tmp_path / "keys.rec"
    path.write_bytes(recordio.encode_records([records.encode_pair([4], [5]), payload]))
    for argv in (["inspect", str(path)], ["inspect", str(path), "--head", "2", "--json"]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
        assert str(path) in lines[0] and "record 1" in lines[0] and "UTF-8" in lines[0], lines[0]


def test_no_sdk_module_shadows_the_standard_library() -> None:
    """``s2s_aws/inspect.py`` shadowed ``inspect`` for code run from inside the package directory."""
    import sys
    from pathlib import Path

    import s2s_aws

    root = Path(s2s_aws.__file__).parent
    names = {p.stem for p in root.glob("*.py")} | {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    assert not names & set(sys.stdlib_module_names), sorted(names & set(sys.stdlib_module_names))
