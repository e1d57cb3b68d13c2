"""Look inside the data files: RecordIO-protobuf record files and vocabulary JSON files.

Example::

    from s2s_aws.inspection import inspect_path, iter_head
    report = inspect_path("prep/train.rec")   # {"kind": "records", "records": 1000, "features": {...}}
    for record in iter_head("prep/train.rec", 3):
        print(record)                          # {"source": [4, 5], "target": [6]}
"""
from __future__ import annotations

import json
import logging
import os
from array import array
from pathlib import Path
from typing import Any, Iterator

from .errors import FormatError
from .contract import recordio, records
from .contract import vocab as vocab_mod

__all__ = ["detect_kind", "inspect_path", "iter_head", "format_report"]

logger = logging.getLogger(__name__)


def detect_kind(path: str | os.PathLike) -> str:
    """``"records"`` for a RecordIO file, ``"vocab"`` for a JSON object; :class:`FormatError` otherwise."""
    label = os.fspath(path)
    p = Path(path)
    if not p.exists():
        raise FormatError("no such file; check the path", path=label)
    if p.is_dir():
        raise FormatError("is a directory; give a .rec or vocabulary .json file", path=label)
    with open(p, "rb") as f:
        head = f.read(4)
    if head == recordio.MAGIC_BYTES:
        return "records"
    if head.lstrip()[:1] == b"{" or p.suffix == ".json":
        return "vocab"
    if not head:
        if p.suffix == ".rec":
            return "records"
        raise FormatError("is empty; expected a RecordIO .rec file or a vocabulary .json file", path=label)
    raise FormatError("is neither a RecordIO file (bad magic at byte offset 0) nor a vocabulary JSON "
                      "object; check that this is a file written by `s2s-aws preprocess`", path=label, offset=0)


def _length_stats(lengths: array) -> dict[str, float | int]:
    import numpy as np

    a = np.frombuffer(lengths, dtype=np.int32) if len(lengths) else np.zeros(0, np.int32)
    if a.size == 0:
        return {"count": 0}
    return {"count": int(a.size), "tokens": int(a.sum()), "min": int(a.min()), "mean": round(float(a.mean()), 3),
            "p50": int(np.percentile(a, 50, method="lower")), "p95": int(np.percentile(a, 95, method="lower")),
            "max": int(a.max()), "empty": int(np.count_nonzero(a == 0))}


def _inspect_records(path: Path) -> dict[str, Any]:
    label = str(path)
    lengths: dict[str, array] = {}
    max_ids: dict[str, int] = {}
    count = 0
    for index, payload in enumerate(recordio.iter_records(path)):
        features = records.decode_features(payload, name=f"{label} (record {index})")
        for key, ids in features.items():
            lengths.setdefault(key, array("i", bytes(4 * count))).append(len(ids))
            if ids:
                max_ids[key] = max(max_ids.get(key, 0), max(ids))
        for key, arr in lengths.items():  # features missing from this record count as length 0
            if len(arr) == count:
                arr.append(0)
        count += 1
    features_report = {key: {**_length_stats(arr), "max_id": max_ids.get(key)} for key, arr in sorted(lengths.items())}
    return {"path": label, "kind": "records", "bytes": path.stat().st_size, "records": count,
            "features": features_report}


def _inspect_vocab(path: Path) -> dict[str, Any]:
    v = vocab_mod.load_vocab(path)
    words = vocab_mod.id_to_token(v)
    return {"path": str(path), "kind": "vocab", "size": len(v),
            "specials": {s: v[s] for s in vocab_mod.SPECIALS}, "words": len(v) - len(vocab_mod.SPECIALS),
            "first_words": words[len(vocab_mod.SPECIALS):len(vocab_mod.SPECIALS) + 10]}


def inspect_path(path: str | os.PathLike) -> dict[str, Any]:
    """Summarize one file: record count and length statistics, or vocabulary size and specials."""
    kind = detect_kind(path)
    return _inspect_records(Path(path)) if kind == "records" else _inspect_vocab(Path(path))


def iter_head(path: str | os.PathLike, n: int) -> Iterator[dict[str, list[int]]]:
    """Yield the int32 features (e.g. ``{"source": [...], "target": [...]}``) of the first ``n`` records."""
    if n <= 0:
        return
    label = os.fspath(path)
    if detect_kind(path) != "records":
        raise FormatError("--head needs a RecordIO .rec file, not a vocabulary", path=label)
    for index, payload in enumerate(recordio.iter_records(path)):
        if index >= n:
            break
        yield records.decode_features(payload, name=f"{label} (record {index})")


def format_report(report: dict[str, Any]) -> str:
    """Render :func:`inspect_path`'s result for people."""
    if report["kind"] == "vocab":
        specials = ", ".join(f"{k}={v}" for k, v in report["specials"].items())
        first = " ".join(report["first_words"])
        return (f"{report['path']}: vocabulary, {report['size']} entries ({report['words']} words + specials "
                f"{specials})\n  most frequent: {first}")
    lines = [f"{report['path']}: RecordIO-protobuf, {report['records']} records, {report['bytes']} bytes"]
    for key, s in report["features"].items():
        if not s.get("count"):
            continue
        lines.append(f"  {key}: length min {s['min']} / mean {s['mean']} / p50 {s['p50']} / p95 {s['p95']} / "
                     f"max {s['max']}, {s['tokens']} tokens, {s['empty']} empty, max id {s['max_id']}")
    return "\n".join(lines)


def dumps_record(record: dict[str, list[int]]) -> str:
    """One JSON line for a record (``--head N --json``)."""
    return json.dumps(record, separators=(", ", ": "))
