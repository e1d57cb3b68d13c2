"""Runtime: JSON and RecordIO-protobuf translation, batching under the payload limit, errors."""
from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_sdk_support import SRC_VOCAB, TRG_VOCAB

from s2s_aws.errors import EndpointFailed, InputError
from s2s_aws.formats import recordio, records
from s2s_aws.runtime import RECORDIO, TranslationResult, json_batches, recordio_batches, translate


class FakeRuntime:
    """A sagemaker-runtime client whose 'model' reverses the tokens (ids) of each sentence."""

    def __init__(self, error: ClientError | None = None):
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        body = kwargs["Body"]
        if kwargs["ContentType"] == "application/json":
            preds = []
            for inst in json.loads(body)["instances"]:
                tokens = inst["data"].split()
                pred: dict[str, Any] = {"target": " ".join(reversed(tokens))}
                if inst.get("configuration", {}).get("attention_matrix") == "true":
                    pred["matrix"] = [[1.0 if i + j == len(tokens) - 1 else 0.0 for j in range(len(tokens))]
                                      for i in range(len(tokens))]
                preds.append(pred)
            out = json.dumps({"predictions": preds}).encode()
        else:
            src = [records.decode_ids(p, "source") for p in recordio.decode_records(body)]
            # map source ids to target ids through the shared words' meaning: 8 (car) -> 4 (kuruma)
            out = recordio.encode_records(records.encode_ids("target", [{8: 4, 9: 8}.get(i, 1) for i in s] + [3])
                                          for s in src)
        return {"Body": io.BytesIO(out), "ContentType": kwargs["Accept"]}


def test_json_translation_keeps_order_and_returns_attention() -> None:
    rt = FakeRuntime()
    results = translate(rt, "ep", ["a b c", "d e"], attention=True)
    assert results == [TranslationResult("c b a", [[0, 0, 1], [0, 1, 0], [1, 0, 0]]),
                       TranslationResult("e d", [[0, 1], [1, 0]])]
    sent = json.loads(rt.calls[0]["Body"])
    assert sent == {"instances": [{"data": "a b c", "configuration": {"attention_matrix": "true"}},
                                  {"data": "d e", "configuration": {"attention_matrix": "true"}}]}
    assert rt.calls[0]["ContentType"] == rt.calls[0]["Accept"] == "application/json"


def test_without_attention_no_matrix_is_requested_or_returned() -> None:
    rt = FakeRuntime()
    assert translate(rt, "ep", ["x y"])[0] == TranslationResult("y x", None)
    assert "configuration" not in json.loads(rt.calls[0]["Body"])["instances"][0]


def test_requests_are_split_under_the_payload_limit() -> None:
    rt = FakeRuntime()
    sentences = [f"word{i} " * 50 for i in range(40)]
    results = translate(rt, "ep", sentences, max_bytes=2000)
    assert len(results) == 40 and results[7].target == " ".join(reversed(sentences[7].split()))
    assert len(rt.calls) > 1
    assert all(len(c["Body"]) <= 2000 for c in rt.calls)
    assert sum(len(json.loads(c["Body"])["instances"]) for c in rt.calls) == 40


def test_batches_respect_max_batch_size_and_size_limit() -> None:
    batches = list(json_batches(["a"] * 10, max_batch_size=4))
    assert [n for _, n in batches] == [4, 4, 2]
    for body, n in batches:
        assert len(json.loads(body)["instances"]) == n
    framed = list(recordio_batches([[5] * 100] * 10, max_bytes=300))
    assert sum(n for _, n in framed) == 10 and all(len(b) <= 300 for b, _ in framed)


def test_a_sentence_over_the_limit_is_an_input_error() -> None:
    with pytest.raises(InputError, match="request limit"):
        translate(FakeRuntime(), "ep", ["x" * 5000], max_bytes=1000)


def test_recordio_translation_goes_through_the_vocabularies() -> None:
    rt = FakeRuntime()
    results = translate(rt, "ep", ["can you drive a car ?", "car"], content_type=RECORDIO,
                        vocab=(SRC_VOCAB, TRG_VOCAB))
    sent = [records.decode_ids(p, "source") for p in recordio.decode_records(rt.calls[0]["Body"])]
    assert sent == [[4, 5, 6, 7, 8, 9], [8]]
    assert [r.target for r in results] == ["<unk> <unk> <unk> <unk> kuruma ?", "kuruma"]
    assert rt.calls[0]["ContentType"] == RECORDIO


def test_recordio_needs_vocab_and_has_no_attention() -> None:
    with pytest.raises(InputError, match="vocab"):
        translate(FakeRuntime(), "ep", ["a"], content_type=RECORDIO)
    with pytest.raises(InputError, match="attention"):
        translate(FakeRuntime(), "ep", ["a"], content_type=RECORDIO, attention=True, vocab=(SRC_VOCAB, TRG_VOCAB))
    with pytest.raises(InputError, match="not supported"):
        translate(FakeRuntime(), "ep", ["a"], content_type="text/csv")


def test_model_error_becomes_endpoint_failed() -> None:
    err = ClientError({"Error": {"Code": "ModelError", "Message": "Received client error (400): bad body"}},
                      "InvokeEndpoint")
    with pytest.raises(EndpointFailed, match="bad body") as info:
        translate(FakeRuntime(error=err), "ep", ["a"])
    assert "/aws/sagemaker/Endpoints/ep" in str(info.value)


def test_endpoint_translate_uses_the_runtime_client(monkeypatch) -> None:
    from test_sdk_support import fake_credentials

    fake_credentials(monkeypatch)
    from test_sdk_support import make_session

    import boto3

    from s2s_aws.hosting import Endpoint

    sess = make_session(boto3.Session(region_name="us-east-1"))
    rt = FakeRuntime()
    sess._clients["sagemaker-runtime"] = rt
    assert Endpoint(sess, "ep").translate("can you drive a car ?")[0].target == "? car a drive you can"
    assert rt.calls[0]["EndpointName"] == "ep"
