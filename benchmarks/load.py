"""Sustained load on the inference server: failures, latency percentiles and memory over time.

Starts the real ``s2s-serve`` program on a loopback port, warms it up, then keeps ``--clients``
concurrent clients (threads, one keep-alive connection each) sending JSON requests of 1-4
sentences for ``--seconds``. Every answer is checked against the answer to the same sentence sent
alone. The server's resident memory (``VmRSS`` from ``/proc``) is sampled at the start and end of
the steady phase (and every second in between). Reports failed requests, requests/s, latency
p50/p90/p99/max and RSS start/end/peak.

``tests/test_load_serve.py`` runs the same driver for a bounded number of requests; this script is
the long run whose figures go to RELIABILITY.md / BENCHMARKS.md ("Robustness").

Usage::

    .venv/bin/python benchmarks/load.py                         # 32 clients, 60 s, tiny test model
    .venv/bin/python benchmarks/load.py --clients 64 --seconds 300 --model-dir prep/model --json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from algo_utils import ServeProcess, sentences_for, train_tiny_model  # noqa: E402,F401  (shared harness)


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (Linux ``/proc``)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def tiny_model() -> Path:
    """The tests' tiny sequence-reversal model, trained into a fresh temporary folder."""
    return Path(train_tiny_model(Path(tempfile.mkdtemp(prefix="s2s-bench-"))))


@dataclass
class LoadResult:
    clients: int
    requests: int = 0
    failures: int = 0
    wrong_answers: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    rss_start: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    errors: list[str] = field(default_factory=list)
    rss_samples: list[tuple[float, int]] = field(default_factory=list, repr=False)  # (seconds, bytes)

    def percentile(self, p: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        k = min(len(data) - 1, max(0, round(p / 100 * (len(data) - 1))))
        return data[k]

    def summary(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("latencies_ms", "errors")}
        out.update({
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(self.percentile(50), 1), "p90_ms": round(self.percentile(90), 1),
            "p99_ms": round(self.percentile(99), 1), "max_ms": round(max(self.latencies_ms, default=0.0), 1),
            "rss_start_mib": round(self.rss_start / 2**20, 1), "rss_end_mib": round(self.rss_end / 2**20, 1),
            "rss_peak_mib": round(self.rss_peak / 2**20, 1), "first_errors": self.errors[:5],
            "rss_timeline_mib": [(round(t), round(b / 2**20, 1)) for t, b in self.rss_samples],
        })
        out.pop("rss_samples", None)
        return out


def reference_answers(url: str, sentences: list[str]) -> dict[str, str]:
    """Each sentence translated alone (the answers every loaded request must match)."""
    out = {}
    with httpx.Client(base_url=url, timeout=60) as c:
        for s in sentences:
            r = c.post("/invocations", json={"instances": [{"data": s}]})
            r.raise_for_status()
            out[s] = r.json()["predictions"][0]["target"]
    return out


def run_load(url: str, pid: int, sentences: list[str], answers: dict[str, str], *, clients: int = 32,
             seconds: float | None = None, requests_per_client: int | None = None, seed: int = 1) -> LoadResult:
    """Steady load for ``seconds`` or ``requests_per_client`` requests per client; RSS sampled each second."""
    if (seconds is None) == (requests_per_client is None):
        raise ValueError("give exactly one of seconds= or requests_per_client=")
    result = LoadResult(clients=clients)
    lock = threading.Lock()
    stop = threading.Event()
    start_gate = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        lat: list[float] = []
        fails = wrong = 0
        errs: list[str] = []
        with httpx.Client(base_url=url, timeout=120) as c:
            start_gate.wait()
            n = 0
            while not stop.is_set() and (requests_per_client is None or n < requests_per_client):
                batch = [rng.choice(sentences) for _ in range(rng.randint(1, 4))]
                t0 = time.perf_counter()
                try:
                    r = c.post("/invocations", json={"instances": [{"data": s} for s in batch]})
                    ok = r.status_code == 200
                    if ok:
                        got = [p["target"] for p in r.json()["predictions"]]
                        if got != [answers[s] for s in batch]:
                            wrong += 1
                    else:
                        errs.append(f"{r.status_code}: {r.text[:200]}")
                except Exception as e:  # a failed request is counted, never fatal to the run
                    ok = False
                    errs.append(f"{type(e).__name__}: {e}")
                lat.append((time.perf_counter() - t0) * 1000)
                fails += not ok
                n += 1
        with lock:
            result.latencies_ms.extend(lat)
            result.requests += n
            result.failures += fails
            result.wrong_answers += wrong
            result.errors.extend(errs)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    result.rss_start = result.rss_peak = rss_bytes(pid)
    t0 = time.monotonic()
    result.rss_samples.append((0.0, result.rss_start))
    next_sample = 10.0
    while any(t.is_alive() for t in threads):
        elapsed = time.monotonic() - t0
        if seconds is not None and elapsed >= seconds:
            stop.set()
        rss = rss_bytes(pid)
        result.rss_peak = max(result.rss_peak, rss)
        if elapsed >= next_sample:
            result.rss_samples.append((elapsed, rss))
            next_sample += 10.0
        for t in threads:
            t.join(timeout=1.0 / len(threads))
    result.seconds = time.monotonic() - t0
    result.rss_end = rss_bytes(pid)
    result.rss_samples.append((result.seconds, result.rss_end))
    result.rss_peak = max(result.rss_peak, result.rss_end)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--warmup-requests", type=int, default=10, help="requests per client before measuring")
    p.add_argument("--model-dir", type=Path, default=None, help="default: the tiny test model (trained once)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    model_dir = args.model_dir or tiny_model()
    sentences = sentences_for(model_dir, 40, seed=3)
    server = ServeProcess(model_dir)
    try:
        server.wait_ready()
        answers = reference_answers(server.url, sentences)
        run_load(server.url, server.proc.pid, sentences, answers, clients=args.clients,
                 requests_per_client=args.warmup_requests, seed=99)
        result = run_load(server.url, server.proc.pid, sentences, answers, clients=args.clients,
                          seconds=args.seconds)
    finally:
        code = server.stop()
    summary = result.summary()
    summary["server_exit_code"] = code
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['clients']} clients, {summary['seconds']:.0f} s: {summary['requests']} requests, "
              f"{summary['failures']} failed, {summary['wrong_answers']} wrong, {summary['requests_per_s']} req/s")
        print(f"latency ms: p50 {summary['p50_ms']}  p90 {summary['p90_ms']}  p99 {summary['p99_ms']}  "
              f"max {summary['max_ms']}")
        print(f"server RSS MiB: start {summary['rss_start_mib']}  end {summary['rss_end_mib']}  "
              f"peak {summary['rss_peak_mib']}")
    return 0 if result.failures == 0 and result.wrong_answers == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
