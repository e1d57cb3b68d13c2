"""Sustained load on the inference server: failures, latency percentiles and memory over time.

Starts the real ``s2s-serve`` program on a loopback port, warms it up, then keeps ``--clients``
concurrent clients (threads, one keep-alive connection each) sending JSON requests of 1-4
sentences for ``--seconds``. Every answer is checked against the answer to the same sentence sent
alone. The server's resident memory (``VmRSS`` from ``/proc``) is sampled at the start and end of
the steady phase (and every second in between). Reports failed requests, requests/s, latency
p50/p90/p99/max and RSS start/end/peak.

``--mixed`` is the hostile/valid mix of issue 19 instead: 64 clients, of which most send small
valid requests (1-4 sentences, answers checked), some send large valid ones (1,000 sentences as
JSON and as RecordIO, a 5.5 MB single sentence with an attention matrix, a 5.5 MB single RecordIO
record; answers checked against the same request sent alone), two ping, and the rest are hostile
(malformed bodies, 200,001 sentences, 7 MB bodies, stalled bodies, wrong content type and Accept)
and must get their 4xx. It reports the status histogram, latency per kind of request (the small
requests' p99 is the one that counts: they all run while large requests do), and RSS over time.

``tests/test_load_serve.py`` runs the same drivers for a bounded number of requests; this script is
the long run whose figures go to RELIABILITY.md / BENCHMARKS.md ("Robustness").

Usage::

    .venv/bin/python benchmarks/load.py                         # 32 clients, 60 s, tiny test model
    .venv/bin/python benchmarks/load.py --clients 64 --seconds 300 --model-dir prep/model --json
    .venv/bin/python benchmarks/load.py --mixed --seconds 60 --json
"""
from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
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
    _drive(threads, start_gate, stop, pid, result, seconds)
    return result


# ------------------------------------------------------------------------- mixed hostile / valid
#: the server settings of the mixed run: a short read timeout so that the stalling clients cycle
#: the mix sets the sentence cap below its default (which refuses no body within 6 MB) so that the
#: "too-many" clients (200,001 sentences) exercise the 413 path
MIXED_SERVER_ENV = {"S2S_READ_TIMEOUT_S": "2", "S2S_MAX_INSTANCES": "200000"}
#: clients per kind in the 64-client mix
MIXED_CLIENTS = {"small": 44, "large-json": 2, "large-recordio": 2, "long-sentence": 2, "long-record": 2,
                 "ping": 2, "malformed": 2, "too-many": 2, "too-large": 2, "stalled": 2, "bad-type": 1,
                 "bad-accept": 1}
LARGE_SENTENCES = 1000
LONG_BYTES = 5_500_000


def _percentiles(values: list[float]) -> dict:
    data = sorted(values)
    if not data:
        return {"requests": 0}

    def pct(p: float) -> float:
        return round(data[min(len(data) - 1, max(0, round(p / 100 * (len(data) - 1))))], 1)

    return {"requests": len(data), "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "max_ms": round(data[-1], 1)}


@dataclass
class MixedResult:
    clients: int
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)               # "200", "413", "exc:ReadTimeout", ...
    latencies_ms: dict[str, list[float]] = field(default_factory=dict, repr=False)
    statuses_by_kind: dict[str, Counter] = field(default_factory=dict)
    unexpected: int = 0                                              # wrong status or wrong answer
    unexpected_examples: list[str] = field(default_factory=list)
    rss_start: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    rss_samples: list[tuple[float, int]] = field(default_factory=list, repr=False)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for k, n in self.statuses.items() if k.startswith("5"))

    def summary(self) -> dict:
        return {
            "clients": self.clients, "seconds": round(self.seconds, 1), "requests": self.requests,
            "statuses": dict(sorted(self.statuses.items())), "server_errors_5xx": self.server_errors,
            "unexpected": self.unexpected, "unexpected_examples": self.unexpected_examples[:5],
            "latency_by_kind": {k: {**_percentiles(v), "statuses": dict(sorted(self.statuses_by_kind[k].items()))}
                                for k, v in sorted(self.latencies_ms.items())},
            "rss_start_mib": round(self.rss_start / 2**20, 1), "rss_end_mib": round(self.rss_end / 2**20, 1),
            "rss_peak_mib": round(self.rss_peak / 2**20, 1),
            "rss_timeline_mib": [(round(t), round(b / 2**20, 1)) for t, b in self.rss_samples],
        }


def _stalled_request(url: str) -> tuple[str, bytes]:
    """A POST declaring 1,000 body bytes that sends 12 and stalls; the status the server answers with."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b'{"instances"')
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "closed"
    return status, data


_MALFORMED = [
    (b"{not json", "application/json"),
    (b'{"instances": [{"data": 7}]}', "application/json"),
    (b"[" * 100_000, "application/json"),
    (b'{"source": "a"}\n{"source": ', "application/jsonlines"),
    (b"\xff\xfe\x00garbage", "application/x-recordio-protobuf"),
    (b'\xff{"instances": []}', "application/json"),
]


class MixedWorkload:
    """The request bodies of the mix and the answer each must get (computed by sending each alone)."""

    def __init__(self, url: str, model_dir: Path, sentences: list[str], answers: dict[str, str]):
        from s2s_aws.contract import recordio, records
        from s2s_aws.contract import vocab as vocab_format

        self.url = url
        self.sentences = sentences
        self.answers = answers
        hp = json.loads((Path(model_dir) / "hyperparameters.json").read_text())
        self.max_src = int(hp["max_seq_len_source"])
        src_vocab = vocab_format.load_vocab(Path(model_dir) / "vocab.src.json")
        rng = random.Random(7)
        large = [rng.choice(sentences) for _ in range(LARGE_SENTENCES)]
        self.large_json = json.dumps({"instances": [{"data": x} for x in large]}).encode()
        self.large_json_answer = [answers[x] for x in large]
        self.large_recordio = recordio.encode_records(
            records.encode_ids("source", vocab_format.encode_tokens(x.split(), src_vocab)) for x in large)
        words = sentences[0].split()
        long = " ".join(words[i % len(words)] for i in range(LONG_BYTES // (1 + max(map(len, words)))))
        self.long_sentence = json.dumps({"instances": [{"data": long, "configuration": {"attention_matrix": "true"}}]
                                         }).encode()
        self.long_sentence_target = None
        cut = " ".join(long.split()[:self.max_src])
        ids = vocab_format.encode_tokens(cut.split(), src_vocab)
        self.long_record = recordio.encode_records([records.encode_ids("source", ids * (LONG_BYTES // len(ids)))])
        self.too_many = json.dumps({"instances": [{"data": "w1"}] * 200_001}).encode()
        self.too_large = b'{"instances": [{"data": "' + b"w1 " * (7 * 2**20 // 3) + b'"}]}'
        with httpx.Client(base_url=url, timeout=120) as c:
            r = c.post("/invocations", json={"instances": [{"data": cut}]})
            r.raise_for_status()
            self.long_sentence_target = r.json()["predictions"][0]["target"]
            self.large_recordio_answer = self._post(c, self.large_recordio, "application/x-recordio-protobuf").content
            self.long_record_answer = self._post(c, recordio.encode_records([records.encode_ids("source", ids)]),
                                                 "application/x-recordio-protobuf").content

    @staticmethod
    def _post(c: httpx.Client, body: bytes, content_type: str, **headers: str) -> httpx.Response:
        return c.post("/invocations", content=body, headers={"Content-Type": content_type, **headers})

    def request(self, kind: str, c: httpx.Client, rng: random.Random) -> tuple[str, str | None]:
        """Send one request of ``kind``: (status, a problem or None)."""
        if kind == "stalled":
            status, _ = _stalled_request(self.url)
            return status, None if status == "408" else f"stalled body answered {status}"
        if kind == "ping":
            r = c.get("/ping")
            return str(r.status_code), None if r.status_code == 200 else r.text[:200]
        if kind == "small":
            batch = [rng.choice(self.sentences) for _ in range(rng.randint(1, 4))]
            r = c.post("/invocations", json={"instances": [{"data": x} for x in batch]})
            ok = r.status_code == 200 and [p["target"] for p in r.json()["predictions"]] == \
                [self.answers[x] for x in batch]
            return str(r.status_code), None if ok else f"small: {r.status_code} {r.text[:200]}"
        if kind == "large-json":
            r = self._post(c, self.large_json, "application/json")
            ok = r.status_code == 200 and [p["target"] for p in r.json()["predictions"]] == self.large_json_answer
            return str(r.status_code), None if ok else f"large-json: {r.status_code} {r.text[:200]}"
        if kind == "large-recordio":
            r = self._post(c, self.large_recordio, "application/x-recordio-protobuf")
            ok = r.status_code == 200 and r.content == self.large_recordio_answer
            return str(r.status_code), None if ok else f"large-recordio: {r.status_code} {r.text[:200]}"
        if kind == "long-sentence":
            r = self._post(c, self.long_sentence, "application/json")
            if r.status_code != 200:
                return str(r.status_code), f"long-sentence: {r.status_code} {r.text[:200]}"
            (pred,) = r.json()["predictions"]
            ok = (pred["target"] == self.long_sentence_target and len(r.content) < 100_000
                  and all(len(row) == self.max_src for row in pred["matrix"]))
            return "200", None if ok else f"long-sentence: wrong answer ({len(r.content)} bytes)"
        if kind == "long-record":
            r = self._post(c, self.long_record, "application/x-recordio-protobuf")
            ok = r.status_code == 200 and r.content == self.long_record_answer
            return str(r.status_code), None if ok else f"long-record: {r.status_code} {r.text[:200]}"
        expected = {"malformed": 400, "too-many": 413, "too-large": 413, "bad-type": 415, "bad-accept": 406}[kind]
        if kind == "malformed":
            r = self._post(c, *rng.choice(_MALFORMED))
        elif kind == "too-many":
            r = self._post(c, self.too_many, "application/json")
        elif kind == "too-large":
            r = self._post(c, self.too_large, "application/json")
        elif kind == "bad-type":
            r = self._post(c, b"a,b\n", "text/csv")
        else:
            r = self._post(c, b'{"instances": [{"data": "w1"}]}', "application/json", Accept="image/png")
        return str(r.status_code), None if r.status_code == expected else f"{kind}: {r.status_code} {r.text[:200]}"


def run_mixed(url: str, pid: int, workload: MixedWorkload, *, clients: dict[str, int] | None = None,
              seconds: float | None = None, requests_per_client: int | None = None, seed: int = 1) -> MixedResult:
    """The hostile/valid mix for ``seconds``, or ``requests_per_client`` requests per client."""
    if (seconds is None) == (requests_per_client is None):
        raise ValueError("give exactly one of seconds= or requests_per_client=")
    clients = dict(MIXED_CLIENTS if clients is None else clients)
    kinds = [k for k, n in clients.items() for _ in range(n)]
    result = MixedResult(clients=len(kinds))
    lock = threading.Lock()
    stop = threading.Event()
    start_gate = threading.Barrier(len(kinds) + 1)

    def client(i: int, kind: str) -> None:
        rng = random.Random(seed * 1000 + i)
        lat: list[float] = []
        statuses: list[str] = []
        problems: list[str] = []
        with httpx.Client(base_url=url, timeout=120) as c:
            start_gate.wait()
            n = 0
            while not stop.is_set() and (requests_per_client is None or n < requests_per_client):
                t0 = time.perf_counter()
                try:
                    status, problem = workload.request(kind, c, rng)
                except Exception as e:  # counted, never fatal to the run
                    status, problem = f"exc:{type(e).__name__}", f"{kind}: {type(e).__name__}: {e}"
                lat.append((time.perf_counter() - t0) * 1000)
                statuses.append(status)
                if problem:
                    problems.append(problem)
                n += 1
        with lock:
            result.latencies_ms.setdefault(kind, []).extend(lat)
            result.statuses.update(statuses)
            result.statuses_by_kind.setdefault(kind, Counter()).update(statuses)
            result.unexpected += len(problems)
            result.unexpected_examples.extend(problems[:2])

    threads = [threading.Thread(target=client, args=(i, k), daemon=True) for i, k in enumerate(kinds)]
    _drive(threads, start_gate, stop, pid, result, seconds)
    return result


def _drive(threads: list[threading.Thread], start_gate: threading.Barrier, stop: threading.Event, pid: int,
           result: "MixedResult | LoadResult", seconds: float | None) -> None:
    """Start ``threads``, sample the server's RSS every second (kept every 10 s) until they end."""
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


# ------------------------------------------------------------------------------ fairness probes
def probe_bodies(model_dir: Path, sentences: list[str]) -> dict[str, tuple[bytes, str]]:
    """The large valid requests of the fairness probes: (body, content type) by name."""
    from s2s_aws.contract import recordio, records
    from s2s_aws.contract import vocab as vocab_format

    src_vocab = vocab_format.load_vocab(Path(model_dir) / "vocab.src.json")
    word = sentences[0].split()[0]
    one_word = json.dumps({"instances": [{"data": word}] * 50_000}).encode()
    ids = vocab_format.encode_tokens((" ".join(sentences) + " ").split()[:40], src_vocab)
    record = recordio.encode_records([records.encode_ids("source", ids)])
    recordio_6mb = record * ((6 * 2**20 - 4096) // len(record))
    return {"50,000 one-word sentences (JSON)": (one_word, "application/json"),
            f"6 MB RecordIO ({len(recordio_6mb) // len(record):,} records of 40 ids)":
                (recordio_6mb, "application/x-recordio-protobuf")}


def run_probe(url: str, body: bytes, content_type: str, small_sentence: str, small_answer: str) -> dict:
    """One large request, and while it runs a client sending one-sentence requests one after another
    and a client pinging: the large request's status and time, the small ones' and pings' latency."""
    done = threading.Event()
    out: dict = {}

    def big() -> None:
        t0 = time.perf_counter()
        try:
            with httpx.Client(base_url=url, timeout=120) as c:
                r = c.post("/invocations", content=body, headers={"Content-Type": content_type})
            out["large_status"] = r.status_code
        except Exception as e:
            out["large_status"] = f"exc:{type(e).__name__}"
        out["large_s"] = round(time.perf_counter() - t0, 2)
        done.set()

    def loop(kind: str) -> None:
        lat: list[float] = []
        statuses: Counter = Counter()
        with httpx.Client(base_url=url, timeout=120) as c:
            while not done.is_set():
                t0 = time.perf_counter()
                if kind == "ping":
                    r = c.get("/ping")
                    ok = r.status_code == 200
                else:
                    r = c.post("/invocations", json={"instances": [{"data": small_sentence}]})
                    ok = r.status_code == 200 and r.json()["predictions"][0]["target"] == small_answer
                lat.append((time.perf_counter() - t0) * 1000)
                statuses[str(r.status_code) if ok else f"{r.status_code}-wrong"] += 1
                if kind == "ping":
                    time.sleep(0.01)
        out[kind] = {**_percentiles(lat), "statuses": dict(statuses)}

    threads = [threading.Thread(target=big)] + [threading.Thread(target=loop, args=(k,)) for k in ("small", "ping")]
    threads[0].start()
    time.sleep(0.05)  # the large request goes first
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--warmup-requests", type=int, default=10, help="requests per client before measuring")
    p.add_argument("--model-dir", type=Path, default=None, help="default: the tiny test model (trained once)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--mixed", action="store_true",
                   help="the 64-client hostile/valid mix with large valid requests (--clients is ignored)")
    p.add_argument("--probe", action="store_true",
                   help="fairness probes: one-sentence requests and pings while one large request runs")
    args = p.parse_args(argv)
    model_dir = args.model_dir or tiny_model()
    sentences = sentences_for(model_dir, 40, seed=3)
    if args.probe:
        return _main_probe(args, model_dir, sentences)
    if args.mixed:
        return _main_mixed(args, model_dir, sentences)
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


def _main_probe(args: argparse.Namespace, model_dir: Path, sentences: list[str]) -> int:
    server = ServeProcess(model_dir)
    results = {}
    try:
        server.wait_ready()
        answers = reference_answers(server.url, sentences[:1])
        for name, (body, content_type) in probe_bodies(model_dir, sentences).items():
            results[name] = run_probe(server.url, body, content_type, sentences[0], answers[sentences[0]])
            if not args.json:
                print(name, json.dumps(results[name]), flush=True)
    finally:
        code = server.stop()
    results["server_exit_code"] = code
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if code == 0 else 1


def _main_mixed(args: argparse.Namespace, model_dir: Path, sentences: list[str]) -> int:
    server = ServeProcess(model_dir, env_extra=MIXED_SERVER_ENV)
    try:
        server.wait_ready()
        answers = reference_answers(server.url, sentences)
        workload = MixedWorkload(server.url, model_dir, sentences, answers)
        run_load(server.url, server.proc.pid, sentences, answers, clients=64,
                 requests_per_client=args.warmup_requests, seed=99)
        result = run_mixed(server.url, server.proc.pid, workload, seconds=args.seconds)
    finally:
        code = server.stop()
    summary = result.summary()
    summary["server_exit_code"] = code
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['clients']} clients, {summary['seconds']:.0f} s: {summary['requests']} requests, "
              f"{summary['server_errors_5xx']} 5xx, {summary['unexpected']} unexpected; statuses {summary['statuses']}")
        for kind, k in summary["latency_by_kind"].items():
            print(f"  {kind:15} {k['requests']:>7} requests  p50 {k.get('p50_ms')}  p99 {k.get('p99_ms')}  "
                  f"max {k.get('max_ms')} ms  {k['statuses']}")
        print(f"server RSS MiB: start {summary['rss_start_mib']}  end {summary['rss_end_mib']}  "
              f"peak {summary['rss_peak_mib']}")
    return 0 if result.server_errors == 0 and result.unexpected == 0 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
