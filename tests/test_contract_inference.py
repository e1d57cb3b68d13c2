"""The /invocations wire format (s2s_aws.contract.inference): what the client writes the server reads,
what the server writes the client reads, and one result type for one translation everywhere."""
from __future__ import annotations

import json

import pytest
from infra_utils import load_deploy_function

from s2s_aws.contract import inference
from s2s_aws.contract.inference import (JSON, JSONLINES, RECORDIO, SUPPORTED_TYPES, Item, RequestLimits,
                                        TranslationResult, decode_jsonlines, decode_predictions,
                                        decode_target_records, encode_response, json_batches, parse_request,
                                        recordio_batches, to_jsonlines)
from s2s_aws.errors import FormatError

SENTENCES = ["can you drive a car ?", "", "a\u2028b  c", "x " * 3000]


def test_client_json_requests_parse_on_the_server_as_sent() -> None:
    bodies = list(json_batches(SENTENCES, attention=True, max_batch_size=3))
    assert [n for _, n in bodies] == [3, 1]
    items = [it for body, _ in bodies for it in parse_request(JSON, body)]
    assert [it.source for it in items] == ["can you drive a car ?", "", "a\u2028b  c", ("x " * 3000)]
    assert all(it.attention for it in items) and [it.tokens for it in items] == [6, 0, 3, 3000]  # U+2028 is whitespace
    # the server's cut to the tokens the model reads, the client's text untouched
    (cut,) = parse_request(JSON, bodies[1][0], limits=RequestLimits(max_source_tokens=4))
    assert cut.source == "x x x x" and cut.tokens == 4


def test_client_jsonlines_requests_parse_on_the_server_as_sent() -> None:
    items = parse_request(JSONLINES, to_jsonlines(SENTENCES))
    assert [it.source for it in items] == SENTENCES[:1] + [""] + SENTENCES[2:]
    assert not any(it.attention for it in items)


def test_client_recordio_requests_parse_on_the_server_as_sent() -> None:
    ids = [[4, 5, 6], [], [7] * 500]
    bodies = list(recordio_batches(ids, max_batch_size=2))
    items = [it for body, _ in bodies for it in parse_request(RECORDIO, body, src_vocab_size=8)]
    assert [it.source for it in items] == ids and {it.kind for it in items} == {"ids"}


def _server_results() -> tuple[list[Item], list[TranslationResult]]:
    items = [Item("text", "a b", attention=True), Item("text", "c", attention=False), Item("text", "", True)]
    results = [TranslationResult("b a", [[0.25, 0.75], [1.0, 0.0]], ids=[5, 4]),
               TranslationResult("c\u2028", None, ids=[6]),
               TranslationResult("", [], ids=[])]
    return items, results


def test_server_json_answers_decode_on_the_client() -> None:
    items, results = _server_results()
    body = encode_response(JSON, items, results)
    assert json.loads(body) == {"predictions": [{"target": "b a", "matrix": [[0.25, 0.75], [1.0, 0.0]]},
                                                {"target": "c\u2028"}, {"target": "", "matrix": []}]}
    assert decode_predictions(body, 3, attention=True, where="endpoint e") == [
        TranslationResult("b a", [[0.25, 0.75], [1.0, 0.0]]), TranslationResult("c\u2028", None),
        TranslationResult("", [])]
    assert [r.matrix for r in decode_predictions(body, 3, attention=False, where="e")] == [None] * 3


def test_server_jsonlines_answers_decode_on_the_client() -> None:
    items, results = _server_results()
    lines = decode_jsonlines(encode_response(JSONLINES, items, results), where="s3://b/k.out")
    assert [line["target"] for line in lines] == ["b a", "c\u2028", ""]


def test_server_recordio_answers_decode_on_the_client() -> None:
    items, results = _server_results()
    body = encode_response(RECORDIO, items, results)
    itos = ["<pad>", "<unk>", "<s>", "</s>", "a", "b", "c"]
    assert [r.target for r in decode_target_records(body, 3, itos, where="endpoint e")] == ["b a", "c", ""]
    with pytest.raises(FormatError, match="sent 2 records, got 3"):
        decode_target_records(body, 2, itos, where="endpoint e")


def test_a_result_without_ids_cannot_be_answered_in_recordio() -> None:
    with pytest.raises(ValueError, match="without target ids"):
        encode_response(RECORDIO, [Item("text", "a")], [TranslationResult("a")])


@pytest.mark.parametrize("body, message", [
    (b"not json", "predictions"),
    (b'{"predictions": {"target": "a"}}', "predictions"),
    (b'{"predictions": ["a"]}', "predictions"),
    (b'{"predictions": [{"target": "a"}, {"target": "b"}]}', "sent 1 sentences, got 2"),
])
def test_answers_without_the_contract_shape_are_format_errors(body: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message) as info:
        decode_predictions(body, 1, attention=False, where="endpoint e")
    assert "endpoint e" in str(info.value)


def test_a_jsonlines_answer_line_that_is_not_json_is_named() -> None:
    with pytest.raises(FormatError, match=r"line 3 is not JSON") as info:
        decode_jsonlines(b'{"target": "a"}\n\n{oops\n', where="s3://b/k.out")
    assert "s3://b/k.out" in str(info.value)


def test_one_result_type_for_one_translation() -> None:
    from s2s_aws import runtime

    assert runtime.TranslationResult is TranslationResult
    assert runtime.JSON is inference.JSON and runtime.RECORDIO is inference.RECORDIO
    r = TranslationResult("b a", [[1.0]])
    assert (r.ids, r.tokens, r.source_tokens) == (None, None, None)


def test_the_deploy_lambda_registers_every_type_the_server_speaks() -> None:
    # the Lambda is bundled from its own folder (boto3 only), so it keeps its own list: it must match
    assert sorted(load_deploy_function("s2s_deploy_function_contract").CONTENT_TYPES) == sorted(SUPPORTED_TYPES)
