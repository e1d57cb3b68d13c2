"""Long fuzz runs: the properties of ``tests/test_fuzz_*.py`` with many more examples.

The test files read ``S2S_FUZZ_EXAMPLES`` (unset in CI: 150-300 examples per property, derandomized).
This script sets it, runs pytest on them with hypothesis statistics, and reports per property the
examples run (passing + invalid), failures and time. Random seeds differ between runs (the
derandomized CI mode is off when ``S2S_FUZZ_EXAMPLES`` is set).

Usage::

    .venv/bin/python benchmarks/fuzz.py                       # 5,000 examples per property
    .venv/bin/python benchmarks/fuzz.py --examples 50000 -k recordio --json
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_fuzz_*.py"))

_TEST = re.compile(r"^(tests/\S+::\S+):\s*$")
_COUNTS = re.compile(r"(\d+) passing, (\d+) failing, and (\d+) invalid")


def parse_statistics(text: str) -> dict[str, dict[str, int]]:
    """``{test id: {"passing", "failing", "invalid"}}`` summed over phases, from hypothesis statistics."""
    out: dict[str, dict[str, int]] = {}
    current = None
    for line in text.splitlines():
        m = _TEST.match(line.strip())
        if m:
            current = m.group(1)
            out[current] = {"passing": 0, "failing": 0, "invalid": 0}
            continue
        m = _COUNTS.search(line)
        if m and current:
            for key, value in zip(("passing", "failing", "invalid"), m.groups()):
                out[current][key] += int(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=5000, help="examples per property (default 5000)")
    p.add_argument("-k", default=None, help="pytest -k expression to pick properties")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    env = {**os.environ, "S2S_FUZZ_EXAMPLES": str(args.examples), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
           "-o", "addopts=", "--timeout=0", *FILES]
    if args.k:
        cmd += ["-k", args.k]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    stats = parse_statistics(proc.stdout)
    total = sum(s["passing"] + s["invalid"] for s in stats.values())
    failing = sum(s["failing"] for s in stats.values())
    summary = {"examples_per_property": args.examples, "properties": len(stats), "examples_run": total,
               "failing_examples": failing, "seconds": round(seconds, 1), "pytest_exit_code": proc.returncode,
               "per_property": stats}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for name, s in stats.items():
            print(f"{s['passing'] + s['invalid']:>8} examples  {s['failing']:>3} failing  {name}")
        print(f"{len(stats)} properties, {total} examples, {failing} failing, {seconds:.0f} s, "
              f"pytest exit {proc.returncode}")
    if proc.returncode != 0:
        print(proc.stdout[-6000:], file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
