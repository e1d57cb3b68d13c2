"""The real ``s2s-serve`` program in a subprocess, on a free loopback port, with a tiny model."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from algo_utils import ServeProcess, train_tiny_model
from s2s_aws.contract import recordio, records
from s2s_aws.contract import vocab as vocab_format
from s2s_aws.local.support import free_port

pytestmark = pytest.mark.slow

SENTENCES = ["w1 w2 w3 w4", "w5 w6", "w7", "w8 zzz-unknown w9", "w10 w11 w12 w13 w14 w15 w16 w17", "w3 w3 w3"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return Path(train_tiny_model(tmp_path_factory.mktemp("tiny-model")))


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    srv = ServeProcess(model_dir, log_path=tmp_path_factory.mktemp("serve") / "serve.log", log_level="info")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def post_json(http, doc, **headers):
    return http.post("/invocations", content=json.dumps(doc).encode(),
                     headers={"Content-Type": "application/json", **headers})


@pytest.fixture(scope="module")
def single_answers(http) -> dict[str, str]:
    """Each sentence translated alone, one request each: the reference for every other test."""
    out = {}
    for s in SENTENCES:
        r = post_json(http, {"instances": [{"data": s}]})
        assert r.status_code == 200, r.text
        out[s] = r.json()["predictions"][0]["target"]
    return out


def good_request_works(http, single_answers) -> None:
    s = SENTENCES[0]
    r = post_json(http, {"instances": [{"data": s}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [{"target": single_answers[s]}]}


def test_ping_and_execution_parameters(http):
    assert http.get("/ping").status_code == 200
    assert http.get("/execution-parameters").json()["MaxPayloadInMB"] == 6


def test_json_with_and_without_attention(http, single_answers, model_dir):
    trg_vocab = vocab_format.load_vocab(model_dir / "vocab.trg.json")
    r = post_json(http, {"instances": [{"data": s} for s in SENTENCES]})
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert [p["target"] for p in preds] == [single_answers[s] for s in SENTENCES]
    assert all(set(p) == {"target"} for p in preds)
    for p in preds:
        assert all(tok in trg_vocab for tok in p["target"].split())

    long_source = " ".join(["w5"] * 150)  # beyond max_seq_len_source: truncated, one column per token used
    max_src = int(json.loads((model_dir / "hyperparameters.json").read_text())["max_seq_len_source"])
    docs = [{"data": s, "configuration": {"attention_matrix": "true"}} for s in SENTENCES + [long_source]]
    r = post_json(http, {"instances": docs})
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert [p["target"] for p in preds[:-1]] == [single_answers[s] for s in SENTENCES]
    for doc, p in zip(docs, preds):
        matrix = p["matrix"]
        assert len(matrix) == len(p["target"].split())
        assert all(len(row) == min(len(doc["data"].split()), max_src) for row in matrix)
        assert all(0.0 <= x <= 1.0 + 1e-5 for row in matrix for x in row)


def test_recordio_round_trip_matches_json(http, single_answers, model_dir):
    src_vocab = vocab_format.load_vocab(model_dir / "vocab.src.json")
    trg_itos = vocab_format.id_to_token(vocab_format.load_vocab(model_dir / "vocab.trg.json"))
    sources = [vocab_format.encode_tokens(s.split(), src_vocab) for s in SENTENCES]
    body = recordio.encode_records(records.encode_ids("source", ids) for ids in sources)
    r = http.post("/invocations", content=body, headers={"Content-Type": "application/x-recordio-protobuf"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-recordio-protobuf"
    targets = [records.decode_ids(p, "target") for p in recordio.decode_records(r.content)]
    assert len(targets) == len(SENTENCES)
    assert [" ".join(trg_itos[i] for i in ids) for ids in targets] == [single_answers[s] for s in SENTENCES]


def test_jsonlines_batch_transform(http, single_answers):
    body = "".join(json.dumps({"source": s}) + "\n" for s in SENTENCES)
    r = http.post("/invocations", content=body.encode(), headers={"Content-Type": "application/jsonlines",
                                                                   "Accept": "application/jsonlines"})
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert len(lines) == len(SENTENCES)
    assert [json.loads(x) for x in lines] == [{"target": single_answers[s]} for s in SENTENCES]


def test_error_paths_then_good_requests(http, single_answers):
    cases = [
        ({"Content-Type": "text/csv"}, b"a,b", 415, "unsupported Content-Type"),
        ({"Content-Type": "application/json"}, b"{oops", 400, "not valid JSON"),
        ({"Content-Type": "application/json"}, b'{"instances": [{"data": "a"}, {"dat": "b"}]}', 400,
         'instances[1]: missing field "data"'),
        ({"Content-Type": "application/jsonlines"}, b'{"source": 3}\n', 400, "line 1.source"),
        ({"Content-Type": "application/x-recordio-protobuf"}, b"\x01\x02\x03\x04\x05\x06\x07\x08", 400, "RecordIO"),
        ({"Content-Type": "application/json", "Accept": "image/png"}, b'{"instances": []}', 406, "Accept"),
    ]
    for headers, body, status, fragment in cases:
        r = http.post("/invocations", content=body, headers=headers)
        assert r.status_code == status, (headers, r.text)
        assert fragment in r.text
        good_request_works(http, single_answers)


def test_body_over_6_mb_is_413_then_good_request(http, single_answers):
    body = json.dumps({"instances": [{"data": "w1 " * (6 * 1024 * 1024 // 3 + 100)}]}).encode()
    r = http.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "6 MB" in r.text
    good_request_works(http, single_answers)


def test_32_concurrent_clients_get_their_own_answers(server, single_answers):
    picks = [SENTENCES[i % len(SENTENCES)] for i in range(32)]

    def one(s):
        with httpx.Client(base_url=server.url, timeout=60) as c:
            return post_json(c, {"instances": [{"data": s}]})

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(one, picks))
    for s, r in zip(picks, responses):
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": [{"target": single_answers[s]}]}


def test_sigterm_finishes_requests_in_flight(model_dir, tmp_path):
    srv = ServeProcess(model_dir, env_extra={"S2S_MAX_BATCH_SIZE": "8"}, log_path=tmp_path / "serve.log",
                       log_level="debug")
    try:
        srv.wait_ready()
        n_requests, per_request = 4, 40
        doc = {"instances": [{"data": SENTENCES[i % len(SENTENCES)]} for i in range(per_request)]}
        with ThreadPoolExecutor(n_requests) as pool:
            futures = [pool.submit(lambda: httpx.post(srv.url + "/invocations", content=json.dumps(doc).encode(),
                                                      headers={"Content-Type": "application/json"}, timeout=60))
                       for _ in range(n_requests)]
            end = time.monotonic() + 60
            while srv.log().count(f"{per_request} sentences, answer as") < n_requests:
                assert time.monotonic() < end, srv.log()
                time.sleep(0.01)
            srv.proc.send_signal(signal.SIGTERM)  # all four are queued or decoding now
            responses = [f.result() for f in futures]
        assert srv.proc.wait(60) == 0
    finally:
        srv.stop()
    for r in responses:
        assert r.status_code == 200
        assert len(r.json()["predictions"]) == per_request
    assert "server stopped" in srv.log()


def test_missing_model_dir_exits_2(tmp_path):
    exe = Path(sys.executable).with_name("s2s-serve")
    proc = subprocess.run([str(exe), "--model-dir", str(tmp_path / "nope")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_broken_model_dir_exits_1(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"not a model")
    proc = subprocess.run([sys.executable, "-m", "s2s_algorithm.serve", "--model-dir", str(tmp_path),
                           "--port", str(free_port()), "--host", "127.0.0.1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "failed to load" in proc.stderr


def _stalled_body(port: int) -> socket.socket:
    """A POST that declares 1,000 body bytes and sends 12, then nothing (a stalled or dripping client)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n" + b'{"instances"')
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    with sock:
        while True:
            chunk = sock.recv(65536)  # socket.timeout (30 s) when the server never answers or closes
            if not chunk:
                return data
            data += chunk


def _no_error_in(log: str) -> None:
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


def test_a_stalled_body_is_408_and_its_connection_closed(model_dir, tmp_path):
    """Issue 19 item 3: a body that stops arriving was held forever. Now S2S_READ_TIMEOUT_S answers
    408 and closes the connection; no traceback; the server keeps serving. A client that hangs up
    mid-body is dropped quietly too (it logged an ERROR traceback: found by benchmarks/fuzz.py --http)."""
    srv = ServeProcess(model_dir, env_extra={"S2S_READ_TIMEOUT_S": "1"}, log_path=tmp_path / "serve.log",
                       log_level="info")
    try:
        srv.wait_ready()
        for _ in range(3):
            _stalled_body(srv.port).close()  # hangs up with the body unfinished
        answers = [_read_until_closed(s) for s in [_stalled_body(srv.port) for _ in range(3)]]
        for a in answers:
            assert a.startswith(b"HTTP/1.1 408"), a[:200]
            assert b"S2S_READ_TIMEOUT_S" in a and b"connection: close" in a.lower()
        r = httpx.post(srv.url + "/invocations", json={"instances": [{"data": "w1 w2"}]}, timeout=60)
        assert r.status_code == 200
    finally:
        assert srv.stop() == 0
    _no_error_in(srv.log())


def test_sigterm_with_stalled_bodies_answers_them_503_and_stops_at_once(model_dir, tmp_path):
    """Issue 19 item 3: SIGTERM with three stalled bodies open waited for uvicorn's 60 s graceful
    timeout, then answered 500 with ERROR tracebacks. Now the stop answers them 503 (connection
    closed) and exits 0 without waiting (the read timeout is 300 s here, so only the stop can end
    them), while a request in flight still gets its answer."""
    srv = ServeProcess(model_dir, env_extra={"S2S_READ_TIMEOUT_S": "300", "S2S_MAX_BATCH_SIZE": "4"},
                       log_path=tmp_path / "serve.log", log_level="debug")
    try:
        srv.wait_ready()
        stalled = [_stalled_body(srv.port) for _ in range(3)]
        doc = {"instances": [{"data": SENTENCES[i % len(SENTENCES)]} for i in range(40)]}
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(lambda: httpx.post(srv.url + "/invocations", json=doc, timeout=60))
            end = time.monotonic() + 60
            while "40 sentences, answer as" not in srv.log():
                assert time.monotonic() < end, srv.log()
                time.sleep(0.01)
            srv.proc.send_signal(signal.SIGTERM)
            answers = [_read_until_closed(s) for s in stalled]
            assert srv.proc.wait(30) == 0   # uvicorn's own graceful timeout would be 60 s
            r = busy.result()
    finally:
        srv.stop()
    for a in answers:
        assert a.startswith(b"HTTP/1.1 503"), a[:200]
        assert b"shutting down" in a
    assert r.status_code == 200 and len(r.json()["predictions"]) == 40
    log = srv.log()
    assert "server stopped" in log
    _no_error_in(log)
