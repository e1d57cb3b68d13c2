"""Long fuzz runs: the properties of ``tests/test_fuzz_*.py`` with many more examples.

The test files read ``S2S_FUZZ_EXAMPLES`` (unset in CI: 150-300 examples per property, derandomized).
This script sets it, runs pytest on them with hypothesis statistics, and reports per property the
examples run (passing + invalid), failures and time. Random seeds differ between runs (the
derandomized CI mode is off when ``S2S_FUZZ_EXAMPLES`` is set).

The serving properties include the per-request bounds of issue 19 (sentences cut to
``max_seq_len_source``, 413 over the sentence and token caps, whitespace-only sentences empty).

``--http N`` adds what an in-process fuzzer cannot reach: N raw-socket requests against the real
``s2s-serve`` (read timeout 0.5 s) with bodies cut short, declared longer or shorter than sent,
sent in random chunks with pauses, or abandoned mid-way. Every one must end in a status below 500
or a closed connection, a good request must work after each, and the server log must hold no
traceback and no ERROR line.

Usage::

    .venv/bin/python benchmarks/fuzz.py                       # 5,000 examples per property
    .venv/bin/python benchmarks/fuzz.py --examples 50000 -k recordio --json
    .venv/bin/python benchmarks/fuzz.py --examples 0 --http 500   # only the HTTP cases
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections import Counter
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


def _http_case(rng: random.Random, bodies: list[tuple[bytes, str]]) -> tuple[bytes, int, list[tuple[bytes, float]], bool]:
    """One hostile request: (head, declared length, [(chunk, pause before it)], abandon early)."""
    body, content_type = rng.choice(bodies)
    if rng.random() < 0.3 and body:
        i = rng.randrange(len(body))
        body = body[:i] + bytes([rng.randrange(256)]) + body[i + 1:]
    sent = body[:rng.randint(0, len(body))] if rng.random() < 0.5 else body
    declared = rng.choice([len(body), len(body) + rng.randint(1, 5000), max(0, len(sent) - rng.randint(0, 3))])
    head = (f"POST /invocations HTTP/1.1\r\nHost: fuzz\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode()
    chunks, pos = [], 0
    while pos < len(sent):
        n = rng.randint(1, max(1, len(sent) // rng.choice([1, 2, 5, 20])))
        chunks.append((sent[pos:pos + n], rng.choice([0.0, 0.0, 0.01, 0.1, 0.3])))
        pos += n
    return head, declared, chunks, rng.random() < 0.15


def _send_case(port: int, case) -> str:
    head, _, chunks, abandon = case
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for chunk, pause in chunks:
                time.sleep(pause)
                sock.sendall(chunk)
                if abandon:
                    return "abandoned"
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (408, 400 on bytes past the declared length) and closed
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            return "reset"
    if not data:
        return "closed"
    return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "garbled"


def run_http_fuzz(cases: int, seed: int = 0) -> dict:
    """``cases`` raw-socket requests against a real s2s-serve with the tiny test model (see module doc)."""
    import httpx

    sys.path.insert(0, str(REPO / "tests"))
    from algo_utils import ServeProcess, sentences_for, train_tiny_model
    import tempfile

    model_dir = Path(train_tiny_model(Path(tempfile.mkdtemp(prefix="s2s-fuzz-"))))
    from s2s_aws.contract import recordio, records

    words = sentences_for(model_dir, 8, seed=1)
    bodies = [(json.dumps({"instances": [{"data": w, "configuration": {"attention_matrix": "true"}}
                                         for w in words]}).encode(), "application/json"),
              ("".join(json.dumps({"source": w}) + "\n" for w in words).encode(), "application/jsonlines"),
              (recordio.encode_records(records.encode_ids("source", [4 + i % 20 for i in range(n)])
                                       for n in range(1, 30)), "application/x-recordio-protobuf"),
              (json.dumps({"instances": [{"data": " ".join(words) * 50}]}).encode(), "application/json")]
    rng = random.Random(seed)
    outcomes: Counter = Counter()
    problems: list[str] = []
    server = ServeProcess(model_dir, env_extra={"S2S_READ_TIMEOUT_S": "0.5"}, log_level="info")
    t0 = time.monotonic()
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=60) as good:
            for i in range(cases):
                case = _http_case(rng, bodies)
                try:
                    outcome = _send_case(server.port, case)
                except Exception as e:
                    outcome = f"exc:{type(e).__name__}"
                outcomes[outcome] += 1
                if outcome.startswith("5") or outcome.startswith("exc") or outcome == "garbled":
                    problems.append(f"case {i}: {outcome} (declared {case[1]}, {sum(len(c) for c, _ in case[2])} sent)")
                r = good.post("/invocations", json={"instances": [{"data": words[0]}]})
                if r.status_code != 200:
                    problems.append(f"after case {i}: a good request got {r.status_code}")
    finally:
        code = server.stop()
    log = server.log()
    if "Traceback" in log or " ERROR " in log:
        problems.append("the server log holds a traceback or an ERROR line")
    if code != 0:
        problems.append(f"s2s-serve exited {code}")
    return {"cases": cases, "outcomes": dict(sorted(outcomes.items())), "problems": problems[:10],
            "seconds": round(time.monotonic() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=5000, help="examples per property (default 5000)")
    p.add_argument("-k", default=None, help="pytest -k expression to pick properties")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--http", type=int, default=0, metavar="N",
                   help="also send N hostile raw-socket requests to a real s2s-serve (stalled, cut, abandoned bodies)")
    args = p.parse_args(argv)
    http = run_http_fuzz(args.http) if args.http else None
    if http is not None and not args.json:
        print(f"http: {http['cases']} cases, outcomes {http['outcomes']}, {len(http['problems'])} problems, "
              f"{http['seconds']} s")
        for line in http["problems"]:
            print("  ", line)
    if args.examples <= 0:
        if args.json:
            print(json.dumps({"http": http}, indent=2))
        return 1 if http and http["problems"] else 0
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
               "per_property": stats, "http": http}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for name, s in stats.items():
            print(f"{s['passing'] + s['invalid']:>8} examples  {s['failing']:>3} failing  {name}")
        print(f"{len(stats)} properties, {total} examples, {failing} failing, {seconds:.0f} s, "
              f"pytest exit {proc.returncode}")
    if proc.returncode != 0:
        print(proc.stdout[-6000:], file=sys.stderr)
    return proc.returncode or (1 if http and http["problems"] else 0)


if __name__ == "__main__":
    sys.exit(main())
