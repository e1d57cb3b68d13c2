"""Preprocessing throughput and memory: ``s2s_aws.preprocess`` vs a straightforward implementation.

Generates a synthetic parallel corpus (Zipf-distributed vocabulary, ~13 tokens per side, a few blank
lines, non-ASCII target words) in a temporary folder, then runs, each in a fresh child process of this
one run:

- ``straightforward``: the rules written the obvious way, single process: ``collections.Counter`` over
  ``str.split()``, one protobuf ``Record`` message per pair, sequential framed writes;
- ``ours``: :func:`s2s_aws.preprocess.preprocess` with ``--workers`` processes.

Each implementation runs ``--repeat`` times, interleaved (ours, straightforward, ours, ...), because the
machine is shared: the table shows the medians of wall and CPU seconds (CPU: the process and all its
children, i.e. all of ours's worker processes) and the ratio of the medians, with the load average
seen during the runs. It checks that both wrote identical vocabularies and identical record contents
(parsed, pair by pair), and that every run of ours wrote the same bytes; it also reports peak RSS
(the parent process and the largest worker).

Usage::

    .venv/bin/python benchmarks/preprocess.py --pairs 1000000 --repeat 5
    .venv/bin/python benchmarks/preprocess.py --pairs 4000000 --repeat 1 --skip-straightforward  # memory
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where the corpus is generated: the children that run the
    import numpy as np  # straightforward implementation do not pay for importing it


# --------------------------------------------------------------------------------------------------
# corpus


def _words(n: int, alphabet: str) -> "np.ndarray":
    """``n`` distinct words: rank ``r`` spelled in base ``len(alphabet)``, so frequent words are short."""
    import numpy as np

    base = len(alphabet)
    out = []
    for r in range(n):
        chars = [alphabet[r % base]]
        r //= base
        while r:
            chars.append(alphabet[r % base])
            r //= base
        out.append("".join(chars))
    return np.array(out, dtype=object)


def generate_corpus(folder: Path, pairs: int, seed: int = 1234) -> dict[str, Path]:
    """Write train.src/train.trg (``pairs`` lines) and val.src/val.trg (``pairs // 200``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab_src = _words(120_000, "etaoinshrdlucmfwypvbgkjqxz")
    vocab_trg = _words(120_000, "のにはをたがでてとしれさあいうえおかきくけこすせそちつなぬねひふへほまみむめもやゆよ")
    ranks = np.arange(1, 120_001, dtype=np.float64)
    cdf = np.cumsum(1.0 / ranks ** 1.05)
    cdf /= cdf[-1]
    paths = {}
    for split, n in (("train", pairs), ("val", max(pairs // 200, 10))):
        for side, words in (("src", vocab_src), ("trg", vocab_trg)):
            path = folder / f"{split}.{side}"
            paths[f"{split}_{side}"] = path
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                block = 100_000
                for start in range(0, n, block):
                    m = min(block, n - start)
                    lengths = np.clip(rng.poisson(13, size=m), 1, 60)
                    blank = rng.random(m) < 0.001
                    lengths[blank] = 0
                    ids = np.searchsorted(cdf, rng.random(int(lengths.sum())))
                    toks = words[ids]
                    ends = np.cumsum(lengths)
                    lines = [" ".join(toks[e - length:e]) for e, length in zip(ends.tolist(), lengths.tolist())]
                    f.write("\n".join(lines) + "\n")
    return paths


# --------------------------------------------------------------------------------------------------
# the straightforward implementation of the same rules


def straightforward(train_src: Path, train_trg: Path, val_src: Path, val_trg: Path, out: Path) -> int:
    """Single process: Counter over str.split(), one Record message per pair, sequential writes."""
    from s2s_aws.contract import vocab
    from s2s_aws.contract.record_pb2 import Record

    def read(path: Path):
        return open(path, encoding="utf-8", errors="replace", newline="\n")

    def count(path: Path) -> Counter:
        counter: Counter = Counter()
        with read(path) as f:
            for line in f:
                counter.update(line.split())
        return counter

    src_vocab = vocab.build_vocab(count(train_src))
    trg_vocab = vocab.build_vocab(count(train_trg))
    written = 0
    magic = 0xCED7230A
    for s_path, t_path, name in ((train_src, train_trg, "train.rec"), (val_src, val_trg, "val.rec")):
        with read(s_path) as fs, read(t_path) as ft, open(out / name, "wb") as w:
            for s_line, t_line in zip(fs, ft):
                s_tokens, t_tokens = s_line.split(), t_line.split()
                if not s_tokens or not t_tokens:
                    continue
                record = Record()
                record.features["source"].int32_tensor.values.extend([src_vocab.get(t, 1) for t in s_tokens])
                record.features["target"].int32_tensor.values.extend([trg_vocab.get(t, 1) for t in t_tokens])
                payload = record.SerializeToString()
                w.write(struct.pack("<II", magic, len(payload)))
                w.write(payload)
                w.write(b"\0" * (-len(payload) % 4))
                written += 1
    for name, v in (("vocab.src.json", src_vocab), ("vocab.trg.json", trg_vocab)):
        with open(out / name, "w", encoding="utf-8") as f:
            json.dump(v, f, ensure_ascii=False, indent=2)
    return written


def ours(train_src: Path, train_trg: Path, val_src: Path, val_trg: Path, out: Path, workers: int | None) -> int:
    from s2s_aws.preprocess import preprocess

    summary = preprocess(train_src, train_trg, val_src, val_trg, output_dir=out, workers=workers)
    return summary.train.pairs + (summary.val.pairs if summary.val else 0)


# --------------------------------------------------------------------------------------------------
# driver


def _run_one(which: str, corpus: Path, out: Path, workers: int | None) -> None:
    """Child process: run one implementation, print timing and peak RSS as JSON."""
    args = (corpus / "train.src", corpus / "train.trg", corpus / "val.src", corpus / "val.trg", out)
    start = time.perf_counter()
    written = straightforward(*args) if which == "straightforward" else ours(*args, workers)
    seconds = time.perf_counter() - start
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"seconds": seconds, "written": written,
                      "cpu_seconds": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
                      "rss_parent_mib": _own_peak_rss_mib(me.ru_maxrss / 1024),
                      "rss_worker_max_mib": kids.ru_maxrss / 1024}))


def _own_peak_rss_mib(fallback: float) -> float:
    """This process's peak RSS. Linux carries ``ru_maxrss`` over ``exec`` (so a child started from a big
    driver would report the driver's size); ``VmHWM`` belongs to this process's own memory."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return fallback


def _child(which: str, corpus: Path, out: Path, workers: int | None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--run-one", which, "--corpus", str(corpus), "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _same_outputs(a: Path, b: Path) -> None:
    from s2s_aws.contract import recordio, records, vocab

    for name in ("vocab.src.json", "vocab.trg.json"):
        va, vb = vocab.load_vocab(a / name), vocab.load_vocab(b / name)
        assert va == vb, f"{name} differs"
    for name in ("train.rec", "val.rec"):
        n = 0
        for pa, pb in zip(recordio.iter_records(a / name), recordio.iter_records(b / name), strict=True):
            if pa != pb:  # map-entry order may differ between protobuf implementations: compare content
                assert records.decode_pair(pa) == records.decode_pair(pb), f"{name} record {n} differs"
            n += 1


def _same_files(a: Path, b: Path) -> None:
    for name in ("vocab.src.json", "vocab.trg.json", "train.rec", "val.rec"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs between runs of ours"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=None, help="ours: worker processes (default: auto)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each implementation, interleaved (ours, straightforward, ours, ...); "
                             "the ratio is of the medians (default: 3)")
    parser.add_argument("--skip-straightforward", action="store_true", help="run ours only (memory scaling)")
    parser.add_argument("--tmpdir", default=None, help="where to put the corpus (default: system temp)")
    parser.add_argument("--run-one", choices=["ours", "straightforward"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:
        _run_one(args.run_one, Path(args.corpus), Path(args.out), args.workers)
        return 0

    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        corpus.mkdir()
        t0 = time.perf_counter()
        generate_corpus(corpus, args.pairs)
        size = sum(p.stat().st_size for p in corpus.iterdir())
        print(f"corpus: {args.pairs:,} training pairs, {size / 2**20:.0f} MiB, generated in "
              f"{time.perf_counter() - t0:.1f}s", flush=True)
        names = ["ours"] + ([] if args.skip_straightforward else ["straightforward"])
        runs: dict[str, list[dict]] = {name: [] for name in names}
        loads = [os.getloadavg()]
        for i in range(args.repeat):
            for name in names:
                out = root / f"{name}-{i}"
                r = _child(name, corpus, out, args.workers if name == "ours" else None)
                runs[name].append(r)
                loads.append(os.getloadavg())
                print(f"{name} #{i + 1}: {json.dumps(r)} (load {loads[-1][0]:.1f})", flush=True)
                if name == "ours" and i:
                    _same_files(root / "ours-0", out)
                if name == "straightforward" and i == 0:
                    _same_outputs(root / "ours-0", out)
                    print("outputs: identical vocabularies and record contents", flush=True)
                shutil.rmtree(out) if i else None
        one = [load[0] for load in loads]
        print()
        print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} usable CPUs, Python "
              f"{platform.python_version()}; 1-minute load average during the runs {min(one):.1f}-{max(one):.1f}")
        print("| implementation | pairs | runs | wall s (median) | pairs/s | CPU s, all processes (median) | "
              "peak RSS parent MiB | peak RSS largest worker MiB |")
        print("|---|---|---|---|---|---|---|---|")
        med: dict[str, dict] = {}
        for name, rs in runs.items():
            m = med[name] = {key: statistics.median(r[key] for r in rs)
                             for key in ("seconds", "cpu_seconds", "rss_parent_mib", "rss_worker_max_mib")}
            walls = ", ".join(f"{r['seconds']:.2f}" for r in rs)
            print(f"| {name} | {args.pairs:,} | {len(rs)} ({walls}) | {m['seconds']:.2f} | "
                  f"{rs[0]['written'] / m['seconds']:,.0f} | {m['cpu_seconds']:.2f} | {m['rss_parent_mib']:.0f} | "
                  f"{m['rss_worker_max_mib']:.0f} |")
        if "straightforward" in med:
            a, b = med["straightforward"], med["ours"]
            print(f"\nratio straightforward / ours (medians): wall {a['seconds'] / b['seconds']:.2f}x, "
                  f"CPU {a['cpu_seconds'] / b['cpu_seconds']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
