"""Endpoint throughput and latency: ``s2s-serve`` with dynamic batching vs without, same run, same model.

Starts the real ``s2s-serve`` program on a loopback port twice (``S2S_DYNAMIC_BATCHING=true`` and
``false``), and for 1, 8 and 32 concurrent clients (threads, one keep-alive connection each) sends
single-sentence JSON requests for a fixed time. Reports requests/s and p50/p99 latency per setting and
the batching/no-batching throughput ratio. Every answer is checked against the answer to the same
sentence sent alone.

The model defaults to the tiny reversal model of the tests (trained here on first use, ~30 s); pass
``--model-dir`` for any other model directory.

Usage::

    .venv/bin/python benchmarks/serve.py                       # 1/8/32 clients, 10 s each
    .venv/bin/python benchmarks/serve.py --clients 1 8 32 64 --seconds 20 --model-dir prep/model
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load as driver  # noqa: E402  (benchmarks/load.py: the server harness and the tiny model)


def _post(client: httpx.Client, sentence: str) -> str:
    r = client.post("/invocations", content=json.dumps({"instances": [{"data": sentence}]}).encode(),
                    headers={"Content-Type": "application/json"})
    r.raise_for_status()
    return r.json()["predictions"][0]["target"]


def load(url: str, sentences: list[str], expected: dict[str, str], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(k: int) -> None:
        rng = random.Random(k)
        mine: list[float] = []
        with httpx.Client(base_url=url, timeout=60) as c:
            _post(c, sentences[0])  # connect before the clock starts mattering
            while time.monotonic() < stop_at:
                s = rng.choice(sentences)
                t0 = time.perf_counter()
                try:
                    got = _post(c, s)
                except httpx.HTTPError as e:
                    with lock:
                        errors.append(repr(e))
                    continue
                mine.append(time.perf_counter() - t0)
                if got != expected[s]:
                    with lock:
                        errors.append(f"wrong answer for {s!r}: {got!r} != {expected[s]!r}")
        with lock:
            latencies.extend(mine)

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    lat = sorted(latencies)
    pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan"))
    return {"clients": clients, "requests": len(lat), "req_per_s": len(lat) / elapsed, "p50_ms": pct(0.50),
            "p99_ms": pct(0.99), "mean_ms": statistics.fmean(lat) * 1000 if lat else float("nan"),
            "errors": len(errors), "first_error": errors[0] if errors else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", type=Path, default=None, help="model directory (default: train the tiny test model)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--seconds", type=float, default=10.0, help="load time per setting")
    p.add_argument("--beam-size", type=int, default=None, help="S2S_BEAM_SIZE for the server (default: the model's)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)

    model_dir = args.model_dir or driver.tiny_model()
    sentences = driver.sentences_for(model_dir, 200, seed=7, words=(3, 9))
    base_env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if args.beam_size:
        base_env["S2S_BEAM_SIZE"] = str(args.beam_size)
    rows = []
    expected: dict[str, str] = {}
    for batching in ("true", "false"):
        srv = driver.ServeProcess(model_dir, {**base_env, "S2S_DYNAMIC_BATCHING": batching})
        try:
            srv.wait_ready(180)
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                answers = {s: _post(c, s) for s in sentences}
            if expected and answers != expected:
                diff = sum(answers[s] != expected[s] for s in sentences)
                print(f"warning: {diff} sentences translated differently with batching={batching}", file=sys.stderr)
            expected = expected or answers
            for n in args.clients:
                row = {"dynamic_batching": batching == "true", **load(srv.url, sentences, answers, n, args.seconds)}
                rows.append(row)
                print(f"batching={batching:5s} clients={n:3d}  {row['req_per_s']:8.1f} req/s  "
                      f"p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}",
                      flush=True)
        finally:
            srv.stop()

    print("\nclients | batching req/s | p50 / p99 ms | no batching req/s | p50 / p99 ms | ratio")
    for n in args.clients:
        on = next(r for r in rows if r["clients"] == n and r["dynamic_batching"])
        off = next(r for r in rows if r["clients"] == n and not r["dynamic_batching"])
        print(f"{n:7d} | {on['req_per_s']:14.1f} | {on['p50_ms']:5.1f} / {on['p99_ms']:5.1f} | "
              f"{off['req_per_s']:17.1f} | {off['p50_ms']:5.1f} / {off['p99_ms']:5.1f} | "
              f"{on['req_per_s'] / off['req_per_s']:.2f}x")
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"model {model_dir}; {args.seconds:g} s per setting")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "model_dir": str(model_dir)}, indent=2))
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
