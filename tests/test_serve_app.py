"""The inference server app in-process, against a fake translator (no torch model needed).

Covers request formats, content negotiation, every error path, dynamic batching, out-of-memory
split-and-retry, failure isolation and the loading state. ``test_serve_http.py`` runs the real
``s2s-serve`` program against a real tiny model.
"""
from __future__ import annotations

import json
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; httpx is what we have
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from s2s_algorithm.serve import ServerSettings, create_app
from s2s_algorithm.serving_batcher import is_out_of_memory
from s2s_aws.contract.inference import RequestError, negotiate_accept
from s2s_aws.errors import InputError

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
WORDS = ["a", "b", "c", "d", "e", "boom", "日本"]


class FakeTranslator:
    """Follows the Translator interface: the "translation" is the source reversed, upper-cased.

    Attention is the anti-diagonal (target token i looks at source token n-1-i). Options: raise
    ValueError for any sentence holding "boom"; raise a CUDA-style OOM on batches larger than
    ``oom_above``; block each call on ``gate`` until the test releases it.
    """

    def __init__(self, *, oom_above: int | None = None, gate: threading.Event | None = None,
                 max_seq_len_source: int | None = None):
        self.src_vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
        self.trg_vocab = {w: i for i, w in enumerate(SPECIALS + [w.upper() for w in WORDS])}
        self.itos = SPECIALS + [w.upper() for w in WORDS]
        self.device = "cpu"
        self.oom_above = oom_above
        self.gate = gate
        self.calls: list[int] = []
        self.sources: list[list[list[int]]] = []   # the sources of each call
        self.attention_flags: list[bool] = []
        if max_seq_len_source is not None:
            self.hp = SimpleNamespace(max_seq_len_source=max_seq_len_source)
        self._lock = threading.Lock()

    def translate_ids(self, sources, *, beam_size=None, attention=False):
        with self._lock:
            self.calls.append(len(sources))
            self.sources.append([list(s) for s in sources])
            self.attention_flags.append(attention)
        if self.gate is not None:
            assert self.gate.wait(30), "test gate never opened"
        if self.oom_above is not None and len(sources) > self.oom_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if any(self.src_vocab["boom"] in s for s in sources):
            raise ValueError("boom in the decoder")
        out = []
        for s in sources:
            ids = list(reversed(s))
            att = None
            if attention:
                att = np.zeros((len(ids), len(s)), dtype=np.float32)
                for r in range(len(ids)):
                    att[r, len(s) - 1 - r] = 1.0
            out.append(SimpleNamespace(ids=ids, attention=att))
        return out

    def translate(self, sentences, *, beam_size=None, attention=False):
        toks = [s.split() for s in sentences]
        outs = self.translate_ids([[self.src_vocab.get(t, 1) for t in ts] for ts in toks],
                                  beam_size=beam_size, attention=attention)
        res = []
        for ts, o in zip(toks, outs):
            tokens = [self.itos[i] for i in o.ids]
            res.append(SimpleNamespace(target=" ".join(tokens), tokens=tokens, source_tokens=ts,
                                       matrix=o.attention.tolist() if o.attention is not None else None))
        return res


def expected(sentence: str) -> str:
    src = {w for w in WORDS}
    return " ".join(t.upper() if t in src else "<unk>" for t in reversed(sentence.split()))


def client_for(translator=None, **settings) -> TestClient:
    app = create_app(translator or FakeTranslator(), settings=ServerSettings(**settings))
    return TestClient(app)


def post_json(client, doc, **headers):
    return client.post("/invocations", content=json.dumps(doc).encode(),
                       headers={"Content-Type": "application/json", **headers})


def good_request_works(client) -> None:
    r = post_json(client, {"instances": [{"data": "a b c"}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [{"target": "C B A"}]}


@pytest.fixture()
def client():
    with client_for() as c:
        yield c


def test_ping_and_execution_parameters(client):
    assert client.get("/ping").status_code == 200
    params = client.get("/execution-parameters").json()
    assert params["MaxPayloadInMB"] == 6
    assert params["BatchStrategy"] == "MULTI_RECORD"
    assert params["MaxConcurrentTransforms"] >= 1


def test_json_without_and_with_attention(client):
    r = post_json(client, {"instances": [{"data": "a b c"}, {"data": "d zzz"}]})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"predictions": [{"target": "C B A"}, {"target": "<unk> D"}]}

    r = post_json(client, {"instances": [
        {"data": "a b c 日本", "configuration": {"attention_matrix": "true"}},
        {"data": "e"},
    ]})
    assert r.status_code == 200
    first, second = r.json()["predictions"]
    assert first["target"] == "日本 C B A"
    matrix = first["matrix"]
    assert len(matrix) == len(first["target"].split()) == 4
    assert all(len(row) == 4 for row in matrix)
    assert matrix[0] == [0.0, 0.0, 0.0, 1.0]
    assert second == {"target": "E"}  # no matrix unless asked for


def test_empty_sentence_and_empty_instances(client):
    r = post_json(client, {"instances": [{"data": "", "configuration": {"attention_matrix": True}}, {"data": "a"}]})
    assert r.status_code == 200
    assert r.json() == {"predictions": [{"target": "", "matrix": []}, {"target": "A"}]}
    r = post_json(client, {"instances": []})
    assert r.status_code == 200 and r.json() == {"predictions": []}


def test_jsonlines_and_accept(client):
    body = '{"source": "a b"}\n{"source": "c"}\n\n{"source": "d e a"}\n'
    r = client.post("/invocations", content=body.encode(), headers={"Content-Type": "application/jsonlines"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/jsonlines")
    lines = r.text.splitlines()
    assert [json.loads(x) for x in lines] == [{"target": "B A"}, {"target": "C"}, {"target": "A E D"}]

    # jsonlines in, JSON out
    r = client.post("/invocations", content=body.encode(),
                    headers={"Content-Type": "application/jsonlines", "Accept": "application/json"})
    assert r.json() == {"predictions": [{"target": "B A"}, {"target": "C"}, {"target": "A E D"}]}

    # JSON in, jsonlines out (Accept with q-values and wildcards)
    r = post_json(client, {"instances": [{"data": "a b"}, {"data": "c"}]},
                  Accept="text/html;q=0.9, application/jsonlines;q=0.8, */*;q=0.1")
    assert r.headers["content-type"].startswith("application/jsonlines")
    assert [json.loads(x) for x in r.text.splitlines()] == [{"target": "B A"}, {"target": "C"}]


def test_recordio_round_trip(client):
    from s2s_aws.contract import recordio
    from s2s_aws.contract import records
    fake = FakeTranslator()
    sources = [[4, 5, 6], [7], [], [10, 1]]
    body = recordio.encode_records(records.encode_ids("source", s) for s in sources)
    r = client.post("/invocations", content=body, headers={"Content-Type": "application/x-recordio-protobuf"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-recordio-protobuf")
    got = [records.decode_ids(p, "target") for p in recordio.decode_records(r.content)]
    assert got == [list(reversed(s)) for s in sources]

    # RecordIO in, JSON out: ids turned into target tokens
    r = client.post("/invocations", content=body,
                    headers={"Content-Type": "application/x-recordio-protobuf", "Accept": "application/json"})
    targets = [p["target"] for p in r.json()["predictions"]]
    assert targets == [" ".join(fake.itos[i] for i in reversed(s)) for s in sources]

    # JSON in, RecordIO out: target tokens turned into ids
    r = post_json(client, {"instances": [{"data": "a b"}]}, Accept="application/x-recordio-protobuf")
    assert [records.decode_ids(p, "target") for p in recordio.decode_records(r.content)] == [[5, 4]]


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b'{"data": "a"}', '"instances"'),
        (b'[1, 2]', "got a list"),
        (b'{"instances": {"data": "a"}}', "instances: expected a list"),
        (b'{"instances": [{"data": "a"}, "b"]}', "instances[1]: expected an object"),
        (b'{"instances": [{"data": "a"}, {"text": "b"}]}', 'instances[1]: missing field "data"'),
        (b'{"instances": [{"data": "a"}, {"data": 7}]}', "instances[1].data: expected a string"),
        (b'{"instances": [{"data": "a", "configuration": {"attention_matrix": "maybe"}}]}',
         "instances[0].configuration.attention_matrix"),
        (b'{"instances": [{"data": "a", "configuration": "x"}]}', "instances[0].configuration: expected a JSON object"),
        (b'\xff\xfe{"instances": []}', "not UTF-8"),
    ],
)
def test_malformed_json_is_400_naming_the_problem(client, body, fragment):
    r = client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert fragment in r.text
    good_request_works(client)


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b'{"source": "a"}\n{"source": "b"\n', "line 2 is not valid JSON"),
        (b'{"source": "a"}\n{"src": "b"}\n', 'line 2: missing field "source"'),
        (b'{"source": ["a"]}\n', "line 1.source: expected a string"),
        (b'"a b"\n', "line 1: expected an object"),
    ],
)
def test_malformed_jsonlines_is_400(client, body, fragment):
    r = client.post("/invocations", content=body, headers={"Content-Type": "application/jsonlines"})
    assert r.status_code == 400
    assert fragment in r.text
    good_request_works(client)


def test_malformed_recordio_is_400(client):
    from s2s_aws.contract import recordio
    from s2s_aws.contract import records
    headers = {"Content-Type": "application/x-recordio-protobuf"}
    r = client.post("/invocations", content=b"\x00\x01\x02\x03garbage", headers=headers)
    assert r.status_code == 400 and "RecordIO" in r.text
    good_request_works(client)
    body = recordio.encode_records([records.encode_ids("source", [4]), records.encode_ids("target", [4])])
    r = client.post("/invocations", content=body, headers=headers)
    assert r.status_code == 400 and "record 1" in r.text
    good_request_works(client)
    body = recordio.encode_records([records.encode_ids("source", [4, 99999])])
    r = client.post("/invocations", content=body, headers=headers)
    assert r.status_code == 400 and "99999" in r.text and "record 0" in r.text
    good_request_works(client)


def test_unsupported_content_type_is_415(client):
    for ctype in ("text/csv", None):
        headers = {"Content-Type": ctype} if ctype else {}
        r = client.post("/invocations", content=b"a,b", headers=headers)
        assert r.status_code == 415
        assert "application/json" in r.text
        good_request_works(client)


def test_unacceptable_accept_is_406(client):
    r = post_json(client, {"instances": [{"data": "a"}]}, Accept="text/csv")
    assert r.status_code == 406
    assert "application/jsonlines" in r.text
    good_request_works(client)


def test_too_large_is_413_by_header_and_by_stream():
    with client_for(max_payload_bytes=1024) as c:
        big = json.dumps({"instances": [{"data": "a " * 1000}]}).encode()
        r = c.post("/invocations", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert "limit" in r.text
        good_request_works(c)

        def chunks():  # no Content-Length: chunked transfer, only the streamed size tells
            for i in range(0, len(big), 256):
                yield big[i:i + 256]

        r = c.post("/invocations", content=chunks(), headers={"Content-Type": "application/json"})
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert r.status_code == 413
        good_request_works(c)


def test_default_payload_cap_is_6_mb(client):
    body = json.dumps({"instances": [{"data": "a " * (3 * 1024 * 1024 + 10)}]}).encode()
    assert len(body) > 6 * 1024 * 1024
    r = client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    good_request_works(client)


def test_model_error_is_500_then_server_keeps_serving(client):
    r = post_json(client, {"instances": [{"data": "a boom"}]})
    assert r.status_code == 500
    assert "ValueError" in r.text and "boom in the decoder" in r.text
    good_request_works(client)


def test_out_of_memory_batch_is_split_and_retried():
    fake = FakeTranslator(oom_above=2)
    app = create_app(fake, settings=ServerSettings())
    sentences = ["a", "b c", "d", "e a b", "c", "d d", "a e", "b"]
    with TestClient(app) as c:
        r = post_json(c, {"instances": [{"data": s} for s in sentences]})
        assert r.status_code == 200, r.text
        assert [p["target"] for p in r.json()["predictions"]] == [expected(s) for s in sentences]
    assert fake.calls[0] == 8  # the whole batch first, then halves until they fit
    assert max(fake.calls[1:]) <= 4 and fake.calls.count(2) == 4
    assert app.state.s2s.batcher.runners[0].oom_splits == 3


def test_out_of_memory_on_one_sentence_is_500():
    fake = FakeTranslator(oom_above=0)
    with client_for(fake) as c:
        r = post_json(c, {"instances": [{"data": "a b"}]})
        assert r.status_code == 500 and "out of memory" in r.text


def test_is_out_of_memory():
    class OutOfMemoryError(RuntimeError):
        pass

    assert is_out_of_memory(OutOfMemoryError("CUDA error"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_large_request_is_split_into_max_batch_size_calls():
    fake = FakeTranslator()
    with client_for(fake, max_batch_size=4) as c:
        sentences = [w for w in "a b c d e a b c d e".split()]
        r = post_json(c, {"instances": [{"data": s} for s in sentences]})
        assert [p["target"] for p in r.json()["predictions"]] == [s.upper() for s in sentences]
    assert fake.calls == [4, 4, 2]


def _concurrent_requests(client, n):
    """n single-sentence requests from n threads; returns the responses in order."""
    sentences = [" ".join(WORDS[(i + k) % 5] for k in range(1 + i % 4)) for i in range(n)]
    with ThreadPoolExecutor(n) as pool:
        responses = list(pool.map(lambda s: post_json(client, {"instances": [{"data": s}]}), sentences))
    return sentences, responses


def _wait_until(predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.005)


def test_concurrent_requests_share_decode_calls():
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)
    app = create_app(fake, settings=ServerSettings(max_batch_size=64, batch_window_ms=5))
    n = 32
    with TestClient(app) as c:
        batcher = app.state.s2s.batcher
        result = {}
        t = threading.Thread(target=lambda: result.update(zip(("s", "r"), _concurrent_requests(c, n))))
        t.start()
        # the first batch blocks in the model; every other request queues behind it
        _wait_until(lambda: fake.calls and fake.calls[0] + batcher.queued_sentences == n)
        gate.set()
        t.join(60)
        for s, r in zip(result["s"], result["r"]):
            assert r.status_code == 200
            assert r.json() == {"predictions": [{"target": expected(s)}]}
    assert sum(fake.calls) == n
    assert len(fake.calls) == 2  # everything queued during the first call went in one call


def test_a_lone_client_never_waits_for_the_window_but_a_burst_does():
    """One request at a time: no concurrency to wait for, so no decode call waits for the window. After
    a call that merged requests (a burst), the next call waits for the window again."""
    gate = threading.Event()
    gate.set()
    fake = FakeTranslator(gate=gate)
    app = create_app(fake, settings=ServerSettings(max_batch_size=64, batch_window_ms=50))
    with TestClient(app) as c:
        batcher = app.state.s2s.batcher
        for word in WORDS[:5]:
            assert post_json(c, {"instances": [{"data": word}]}).json() == {"predictions": [{"target": expected(word)}]}
        assert batcher.windows_waited == 0 and fake.calls == [1] * 5
        gate.clear()                    # the next call blocks in the model...
        first = threading.Thread(target=lambda: post_json(c, {"instances": [{"data": "a"}]}))
        first.start()
        _wait_until(lambda: len(fake.calls) == 6)
        burst = {}                      # ...while 7 requests queue behind it
        t = threading.Thread(target=lambda: burst.update(zip(("s", "r"), _concurrent_requests(c, 7))))
        t.start()
        _wait_until(lambda: batcher.queued_sentences == 7)
        gate.set()
        first.join(60)
        t.join(60)
        assert all(r.status_code == 200 for r in burst["r"])
        assert fake.calls[5:] == [1, 7]
        assert batcher.windows_waited == 1                # the merged call waited (7 queued)
        assert post_json(c, {"instances": [{"data": "b"}]}).status_code == 200
        assert batcher.windows_waited == 2                # the call after a merged one waits too
        assert post_json(c, {"instances": [{"data": "c"}]}).status_code == 200
        assert batcher.windows_waited == 2                # and then a lone client is alone again


def test_the_window_shrinks_to_a_fraction_of_fast_decodes():
    """A 500 ms window is no use when a decode call takes milliseconds: after a few calls the window
    is at most WINDOW_FRACTION of their (moving average) time."""
    from s2s_algorithm.serving_batcher import WINDOW_FRACTION

    app = create_app(FakeTranslator(), settings=ServerSettings(max_batch_size=64, batch_window_ms=500))
    with TestClient(app) as c:
        batcher = app.state.s2s.batcher
        assert batcher.window == 0.5                      # nothing measured yet: the setting
        for word in WORDS[:4]:
            assert post_json(c, {"instances": [{"data": word}]}).status_code == 200
        assert 0 < batcher.window <= WINDOW_FRACTION * batcher._decode_s < 0.25


def test_dynamic_batching_off_decodes_each_request_alone():
    fake = FakeTranslator()
    with client_for(fake, dynamic_batching=False) as c:
        sentences, responses = _concurrent_requests(c, 16)
        for s, r in zip(sentences, responses):
            assert r.json() == {"predictions": [{"target": expected(s)}]}
    assert fake.calls == [1] * 16


def test_a_failing_request_does_not_fail_its_batch_neighbours():
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)
    app = create_app(fake, settings=ServerSettings())
    docs = [{"instances": [{"data": "a b"}]}, {"instances": [{"data": "boom"}]}, {"instances": [{"data": "c"}]},
            {"instances": [{"data": "d e"}]}]
    with TestClient(app) as c, ThreadPoolExecutor(len(docs)) as pool:
        batcher = app.state.s2s.batcher
        futures = [pool.submit(post_json, c, d) for d in docs]
        _wait_until(lambda: fake.calls and fake.calls[0] + batcher.queued_sentences == len(docs))
        gate.set()
        codes = [f.result().status_code for f in futures]
        assert codes == [200, 500, 200, 200]
        assert futures[3].result().json() == {"predictions": [{"target": "E D"}]}
        good_request_works(c)


def test_attention_requested_by_one_sentence_only_is_returned_for_it_only(client):
    r = post_json(client, {"instances": [{"data": "a b", "configuration": {"attention_matrix": "false"}},
                                         {"data": "c d", "configuration": {"attention_matrix": "TRUE"}}]})
    p = r.json()["predictions"]
    assert "matrix" not in p[0]
    assert p[1]["matrix"] == [[0.0, 1.0], [1.0, 0.0]]


def test_ping_is_503_while_loading_then_200():
    release = threading.Event()
    fake = FakeTranslator()

    def loader():
        assert release.wait(30)
        return [fake]

    app = create_app(loader=loader)
    with TestClient(app) as c:
        r = c.get("/ping")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        r = post_json(c, {"instances": [{"data": "a"}]})
        assert r.status_code == 503 and "loading" in r.text
        release.set()
        _wait_until(lambda: c.get("/ping").status_code == 200)
        good_request_works(c)


def test_load_failure_is_reported():
    failures = []

    def loader():
        raise FileNotFoundError("model.pt not found in /nowhere")

    app = create_app(loader=loader, on_load_failure=failures.append)
    with TestClient(app) as c:
        _wait_until(lambda: c.get("/ping").json()["status"] == "failed")
        r = c.get("/ping")
        assert r.status_code == 503 and "model.pt not found" in r.json()["error"]
        r = post_json(c, {"instances": [{"data": "a"}]})
        assert r.status_code == 503 and "failed to load" in r.text
    assert len(failures) == 1 and isinstance(failures[0], FileNotFoundError)


def test_request_timeout_is_504_and_server_recovers():
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)
    with client_for(fake, request_timeout_s=0.2) as c:
        r = post_json(c, {"instances": [{"data": "a"}]})
        assert r.status_code == 504 and "did not finish" in r.text
        gate.set()
        good_request_works(c)


def test_settings_from_env():
    s = ServerSettings.from_env({"S2S_MAX_BATCH_SIZE": "8", "S2S_BATCH_WINDOW_MS": "2.5",
                                 "S2S_DYNAMIC_BATCHING": "false", "S2S_BEAM_SIZE": "1"})
    assert (s.max_batch_size, s.batch_window_ms, s.dynamic_batching, s.beam_size) == (8, 2.5, False, 1)
    d = ServerSettings.from_env({})
    assert (d.max_batch_size, d.batch_window_ms, d.dynamic_batching, d.max_payload_bytes, d.beam_size) == \
        (64, 5.0, True, 6 * 1024 * 1024, None)
    with pytest.raises(InputError, match="S2S_MAX_BATCH_SIZE"):
        ServerSettings.from_env({"S2S_MAX_BATCH_SIZE": "many"})
    with pytest.raises(InputError, match="S2S_MAX_BATCH_SIZE"):
        ServerSettings.from_env({"S2S_MAX_BATCH_SIZE": "0"})
    with pytest.raises(InputError, match="S2S_DYNAMIC_BATCHING"):
        ServerSettings.from_env({"S2S_DYNAMIC_BATCHING": "sometimes"})
    s = ServerSettings.from_env({"S2S_MAX_INSTANCES": "10", "S2S_MAX_TOKENS": "99", "S2S_READ_TIMEOUT_S": "1.5"})
    assert (s.max_instances, s.max_tokens, s.read_timeout_s) == (10, 99, 1.5)
    assert (d.max_instances, d.max_tokens, d.read_timeout_s) == (600_000, 3_200_000, 20.0)
    for name in ("S2S_MAX_INSTANCES", "S2S_MAX_TOKENS", "S2S_READ_TIMEOUT_S"):
        with pytest.raises(InputError, match=name):
            ServerSettings.from_env({name: "0"})


def test_negotiate_accept():
    assert negotiate_accept(None, "application/json") == "application/json"
    assert negotiate_accept("*/*", "application/jsonlines") == "application/jsonlines"
    assert negotiate_accept("application/json; charset=utf-8", "x") == "application/json"
    assert negotiate_accept("application/jsonl", "x") == "application/jsonlines"
    assert negotiate_accept("text/csv, application/x-recordio-protobuf;q=0.5", "x") == \
        "application/x-recordio-protobuf"
    assert negotiate_accept("application/json;q=0, application/*;q=0.2", "application/jsonlines") == \
        "application/jsonlines"
    with pytest.raises(RequestError) as e:
        negotiate_accept("application/json;q=0, text/plain", "application/json")
    assert e.value.status == 406


# ------------------------------------------------------------------ bounded, fair work (issue 19)
def test_sentences_are_cut_to_max_seq_len_source_and_the_matrix_has_the_columns_used():
    """The model reads a sentence's first max_seq_len_source tokens; the server cuts it there when it
    parses the body, so the translator never sees the rest and the matrix has one column per token used."""
    fake = FakeTranslator(max_seq_len_source=3)
    with client_for(fake) as c:
        r = post_json(c, {"instances": [{"data": "a b c d e a b", "configuration": {"attention_matrix": "true"}},
                                        {"data": "e d"}]})
        assert r.status_code == 200, r.text
        first, second = r.json()["predictions"]
        assert first["target"] == "C B A" and second == {"target": "D E"}
        assert first["matrix"] == [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
        body = recordio_body([[4, 5, 6, 7, 8, 9]])
        r = c.post("/invocations", content=body, headers={"Content-Type": "application/x-recordio-protobuf",
                                                          "Accept": "application/json"})
        assert r.json() == {"predictions": [{"target": "C B A"}]}
    assert sorted(map(len, (s for call in fake.sources for s in call))) == [2, 3, 3]


def recordio_body(sources):
    from s2s_aws.contract import recordio, records

    return recordio.encode_records(records.encode_ids("source", s) for s in sources)


def test_whitespace_only_sentences_are_empty_sentences():
    fake = FakeTranslator()
    with client_for(fake) as c:
        r = post_json(c, {"instances": [{"data": " \t\u3000\n", "configuration": {"attention_matrix": "true"}},
                                        {"data": ""}, {"data": "  a "}]})
        assert r.json() == {"predictions": [{"target": "", "matrix": []}, {"target": ""}, {"target": "A"}]}
    assert fake.sources == [[[4]]]  # no model call for the two empty ones


def test_too_many_sentences_or_tokens_is_413_naming_the_limit():
    fake = FakeTranslator(max_seq_len_source=4)
    with client_for(fake, max_instances=5, max_tokens=12) as c:
        r = post_json(c, {"instances": [{"data": "a"}] * 6})
        assert r.status_code == 413
        assert "6 sentences" in r.text and "at most 5 per request (S2S_MAX_INSTANCES)" in r.text
        lines = "".join(json.dumps({"source": "a b"}) + "\n" for _ in range(9))
        r = c.post("/invocations", content=lines.encode(), headers={"Content-Type": "application/jsonlines"})
        assert r.status_code == 413 and "at most 5 per request (S2S_MAX_INSTANCES)" in r.text
        r = c.post("/invocations", content=recordio_body([[4]] * 7),
                   headers={"Content-Type": "application/x-recordio-protobuf"})
        assert r.status_code == 413 and "7 sentences" in r.text
        # tokens are counted as the model reads them: 4 sentences of 100 words are 16 tokens
        r = post_json(c, {"instances": [{"data": "a " * 100}] * 4})
        assert r.status_code == 413
        assert "more than 12 source tokens, each sentence counted up to its first 4" in r.text
        assert "(S2S_MAX_TOKENS)" in r.text
        r = post_json(c, {"instances": [{"data": "a " * 100}] * 3})  # 12 tokens used: fine
        assert r.status_code == 200 and r.json()["predictions"][0]["target"] == "A A A A"
        assert fake.calls == [3]
        good_request_works(c)


def test_default_limits_refuse_no_body_within_the_6_mb_cap():
    """The built-in accepts any body up to 6 MB, so the default caps refuse none: the densest 6 MB
    bodies (one-word or empty sentences; one-character tokens) parse; a cap set lower refuses."""
    from s2s_aws.contract.inference import JSON, JSONLINES, RequestLimits, parse_request

    d = ServerSettings()
    cap = d.max_payload_bytes
    limits = RequestLimits(max_instances=d.max_instances, max_tokens=d.max_tokens, max_source_tokens=100)
    one_word = json.dumps({"source": "a"}).encode() + b"\n"
    body = one_word * (cap // len(one_word))
    assert len(parse_request(JSONLINES, body, limits=limits)) == cap // len(one_word)   # ~390,000
    empty = b'{"data":""}'
    n = (cap - len(b'{"instances":[]}')) // (len(empty) + 1)
    body = b'{"instances":[' + b",".join([empty] * n) + b"]}"
    assert len(body) <= cap
    assert len(parse_request(JSON, body, limits=limits)) == n                              # ~570,000
    line = json.dumps({"source": " ".join("a" * 100)}).encode() + b"\n"              # 100 tokens of one char
    body = line * (cap // len(line))
    items = parse_request(JSONLINES, body, limits=limits)
    assert sum(it.tokens for it in items) == 100 * (cap // len(line)) > 2_900_000
    with pytest.raises(RequestError) as e:
        parse_request(JSONLINES, one_word * 1000, limits=RequestLimits(max_instances=999, max_tokens=d.max_tokens,
                                                                     max_source_tokens=100))
    assert e.value.status == 413 and "S2S_MAX_INSTANCES" in e.value.message


class StepGate:
    """Each decode call waits for its own permit: the test lets the model make one call at a time."""

    def __init__(self) -> None:
        self.permits = threading.Semaphore(0)

    def wait(self, timeout):
        return self.permits.acquire(timeout=timeout)

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self.permits.release()


@pytest.mark.parametrize("dynamic_batching", [True, False])
def test_a_small_request_is_served_between_slices_of_a_large_one(dynamic_batching):
    """Fair scheduling: a one-sentence request that arrives while a 40-sentence request is decoding
    goes into the very next decode call, not after the whole large request (first come first served
    made it wait for all 10 calls of the large one; issue 19 item 3)."""
    gate = StepGate()
    fake = FakeTranslator(gate=gate)
    app = create_app(fake, settings=ServerSettings(max_batch_size=4, dynamic_batching=dynamic_batching))
    large = {"instances": [{"data": "a b"}] * 40}
    with TestClient(app) as c, ThreadPoolExecutor(2) as pool:
        big = pool.submit(post_json, c, large)
        _wait_until(lambda: len(fake.calls) == 1)         # the large request's first slice is decoding
        small = pool.submit(post_json, c, {"instances": [{"data": "c d e"}]})
        if dynamic_batching:
            _wait_until(lambda: app.state.s2s.batcher.queued_sentences == 36 + 1)
        else:  # the small request waits for the model
            _wait_until(lambda: len(app.state.s2s.batcher._idle._getters) == 1)
        gate.release(100)
        assert small.result(30).json() == {"predictions": [{"target": "E D C"}]}
        assert [p["target"] for p in big.result(30).json()["predictions"]] == ["B A"] * 40
    small_ids = [6, 7, 8]
    call = next(i for i, srcs in enumerate(fake.sources) if small_ids in srcs)
    assert call == 1, fake.calls
    assert sum(fake.calls) == 41 and max(fake.calls) <= 4


def test_fair_batches_share_the_room_between_requests():
    """Inside one batch of 8: the fair lane (4) gives each request one, then the leftover to the request
    closest to done (the 2-sentence one gets both); the oldest lane (4) goes to the oldest request."""
    gate = StepGate()
    fake = FakeTranslator(gate=gate)
    app = create_app(fake, settings=ServerSettings(max_batch_size=8))
    with TestClient(app) as c, ThreadPoolExecutor(4) as pool:
        first = pool.submit(post_json, c, {"instances": [{"data": "a"}]})
        _wait_until(lambda: len(fake.calls) == 1)
        docs = [{"instances": [{"data": "b"}] * 20}, {"instances": [{"data": "c"}] * 20},
                {"instances": [{"data": "d"}] * 2}]
        futures, queued = [], 0
        for d in docs:   # one at a time, so that the arrival order (which the oldest lane reads) is b, c, d
            futures.append(pool.submit(post_json, c, d))
            queued += len(d["instances"])
            _wait_until(lambda q=queued: app.state.s2s.batcher.queued_sentences == q)
        gate.release(100)
        assert first.result(30).status_code == 200
        assert all(f.result(30).status_code == 200 for f in futures)
    second = sorted(s[0] for s in fake.sources[1])
    assert second == [5, 5, 5, 5, 5, 6, 7, 7]   # "d" x 2 whole, 1 + 4 for the oldest "b", 1 for "c"


def test_a_large_request_keeps_half_the_model_however_many_small_ones_wait():
    """The oldest lane: with ten one-sentence requests queued behind a 40-sentence one, the large one
    still gets half of each batch (with fair shares alone it got one sentence per batch, and under 44
    clients of small requests a 1,000-sentence request timed out); the small ones share the rest."""
    gate = StepGate()
    fake = FakeTranslator(gate=gate)
    app = create_app(fake, settings=ServerSettings(max_batch_size=8))
    with TestClient(app) as c, ThreadPoolExecutor(12) as pool:
        first = pool.submit(post_json, c, {"instances": [{"data": "e"}]})
        _wait_until(lambda: len(fake.calls) == 1)
        big = pool.submit(post_json, c, {"instances": [{"data": "a"}] * 40})
        _wait_until(lambda: app.state.s2s.batcher.queued_sentences == 40)
        small = [pool.submit(post_json, c, {"instances": [{"data": "b"}]}) for _ in range(10)]
        _wait_until(lambda: app.state.s2s.batcher.queued_sentences == 50)
        gate.release(100)
        assert first.result(30).status_code == 200 and big.result(30).status_code == 200
        assert all(f.result(30).json() == {"predictions": [{"target": "B"}]} for f in small)
    second, third = ([s[0] for s in call] for call in fake.sources[1:3])
    assert second.count(4) >= 4 and third.count(4) >= 4      # "a": the large request
    assert second.count(5) + third.count(5) >= 6             # "b": small requests get in too


def test_large_bodies_are_parsed_and_answers_encoded_off_the_event_loop(monkeypatch):
    """While a large body is being parsed, /ping answers: the parse runs in a helper thread. Here the
    parse blocks until /ping has answered (or 30 s pass): on the event loop it would block /ping too,
    and /ping would come second (issue 19 item 3: /ping took 2.6 s during a 6 MB RecordIO request)."""
    import s2s_algorithm.serve as serve

    real_parse, real_encode = serve.parse_request, serve.encode_response
    ping_done = threading.Event()
    events: list[str] = []
    threads: dict[str, str] = {}

    def slow_parse(*args, **kwargs):
        threads["parse"] = threading.current_thread().name
        ping_done.wait(30)
        events.append("parsed")
        return real_parse(*args, **kwargs)

    def encode(*args, **kwargs):
        threads["encode"] = threading.current_thread().name
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(serve, "parse_request", slow_parse)
    monkeypatch.setattr(serve, "encode_response", encode)
    body = recordio_body([[4, 5, 6]] * 20_000)     # about 600 KB
    with client_for(max_batch_size=64) as c, ThreadPoolExecutor(1) as pool:
        big = pool.submit(c.post, "/invocations", content=body,
                          headers={"Content-Type": "application/x-recordio-protobuf"})
        _wait_until(lambda: "parse" in threads)
        assert c.get("/ping").status_code == 200
        events.append("ping")
        ping_done.set()
        r = big.result(60)
    assert r.status_code == 200
    assert events == ["ping", "parsed"]
    assert threads["parse"].startswith("s2s-parse") and threads["encode"].startswith("s2s-parse")


def test_request_timeout_covers_parsing(monkeypatch):
    """The request timeout counts from the request's arrival: a parse that outlasts it is a 504 too."""
    import s2s_algorithm.serve as serve

    release = threading.Event()
    real_parse = serve.parse_request

    def stuck_parse(*args, **kwargs):
        release.wait(30)
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(serve, "parse_request", stuck_parse)
    with client_for(request_timeout_s=0.3) as c:
        r = c.post("/invocations", content=recordio_body([[4, 5]] * 10_000),
                   headers={"Content-Type": "application/x-recordio-protobuf"})
        release.set()
        assert r.status_code == 504 and "S2S_REQUEST_TIMEOUT_S" in r.text
        good_request_works(c)


def test_refused_large_requests_leave_nothing_behind():
    """A request over the sentence cap is parsed, then refused; its parsed document (here 50,000 dicts
    per request) must be freed at once, not kept alive in a reference cycle until a full garbage
    collection (four clients sending 200,001-sentence requests took the server to 3.3 GB)."""
    import gc
    import tracemalloc

    body = json.dumps({"instances": [{"data": "a"}] * 50_000}).encode()
    with client_for(max_instances=10) as c:
        assert post_json(c, {"instances": [{"data": "a"}] * 11}).status_code == 413  # warm up
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(5):
                r = c.post("/invocations", content=body, headers={"Content-Type": "application/json"})
                assert r.status_code == 413 and "50000 sentences" in r.text
            kept = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
            gc.enable()
    assert kept < 8 * 2**20, f"{kept / 2**20:.1f} MiB still held after 5 refused requests"
