"""Invoke an endpoint: translate in JSON (with attention) or RecordIO-protobuf, batched under 6 MB.

Example (a raw ``sagemaker-runtime`` client from your own session)::

    from s2s_aws.runtime import translate
    results = translate(boto3.Session().client("sagemaker-runtime"), "my-endpoint",
                        ["can you drive a car ?"], attention=True)
    results[0].target, results[0].matrix

Sentences are tokenized text (tokens separated by spaces), as in training. Requests are split so
that each body stays under the 6 MB invocation limit and holds at most ``max_batch_size``
sentences (long batches of attention matrices make large responses).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from ._aws import error_code, error_message
from .errors import AWSOperationError, EndpointFailed, FormatError, InputError

logger = logging.getLogger(__name__)

__all__ = ["TranslationResult", "translate", "JSON", "RECORDIO", "MAX_PAYLOAD_BYTES", "json_batches",
           "recordio_batches"]

JSON = "application/json"
RECORDIO = "application/x-recordio-protobuf"
#: SageMaker's InvokeEndpoint request limit (6 MB); we keep a little headroom under it
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 - 16 * 1024
DEFAULT_MAX_BATCH = 64


@dataclass
class TranslationResult:
    """One translation: ``target`` text; ``matrix`` (rows = target tokens, columns = source tokens) on request."""

    target: str
    matrix: list[list[float]] | None = None


def _instance(sentence: str, attention: bool) -> dict[str, Any]:
    inst: dict[str, Any] = {"data": sentence}
    if attention:
        inst["configuration"] = {"attention_matrix": "true"}
    return inst


def json_batches(sentences: Sequence[str], *, attention: bool = False, max_bytes: int = MAX_PAYLOAD_BYTES,
                 max_batch_size: int = DEFAULT_MAX_BATCH) -> Iterator[tuple[bytes, int]]:
    """Yield ``(body, count)`` JSON request bodies, each under ``max_bytes`` and ``max_batch_size`` sentences."""
    envelope = len(b'{"instances": []}')
    items: list[str] = []
    size = envelope

    def body() -> bytes:
        return ('{"instances": [' + ", ".join(items) + "]}").encode("utf-8")

    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise InputError(f"sentence {i} is {type(sentence).__name__}, expected str")
        item = json.dumps(_instance(sentence, attention), ensure_ascii=False)
        item_size = len(item.encode("utf-8")) + 2
        if envelope + item_size > max_bytes:
            raise InputError(f"sentence {i} alone is {item_size} bytes, over the {max_bytes}-byte request "
                             "limit; split it or use batch transform")
        if items and (size + item_size > max_bytes or len(items) >= max_batch_size):
            yield body(), len(items)
            items, size = [], envelope
        items.append(item)
        size += item_size
    if items:
        yield body(), len(items)


def recordio_batches(id_lists: Sequence[Sequence[int]], *, max_bytes: int = MAX_PAYLOAD_BYTES,
                     max_batch_size: int = DEFAULT_MAX_BATCH) -> Iterator[tuple[bytes, int]]:
    """Yield ``(body, count)`` RecordIO-protobuf bodies of ``features["source"]`` Records."""
    from .formats import recordio, records

    batch: list[bytes] = []
    size = 0
    for i, ids in enumerate(id_lists):
        payload = records.encode_ids("source", list(ids))
        framed = 8 + (len(payload) + 3) // 4 * 4
        if framed > max_bytes:
            raise InputError(f"sentence {i} alone is {framed} bytes, over the {max_bytes}-byte request limit")
        if batch and (size + framed > max_bytes or len(batch) >= max_batch_size):
            yield recordio.encode_records(batch), len(batch)
            batch, size = [], 0
        batch.append(payload)
        size += framed
    if batch:
        yield recordio.encode_records(batch), len(batch)


def _invoke(runtime: Any, endpoint_name: str, body: bytes, content_type: str, accept: str) -> bytes:
    try:
        resp = runtime.invoke_endpoint(EndpointName=endpoint_name, Body=body, ContentType=content_type, Accept=accept)
    except Exception as e:
        code = error_code(e)
        if code == "ModelError":
            raise EndpointFailed(f"endpoint {endpoint_name} rejected the request: {error_message(e)}. See its "
                                 f"log group /aws/sagemaker/Endpoints/{endpoint_name}",
                                 endpoint_name=endpoint_name, status="ModelError", reason=error_message(e)) from e
        if code == "ValidationException" and "not found" in error_message(e).lower():
            raise InputError(f"endpoint {endpoint_name} not found: {error_message(e)}; check the name and region") from e
        raise AWSOperationError(f"invoking endpoint {endpoint_name} failed ({code or type(e).__name__}): "
                                f"{error_message(e)}; check that it is InService (`s2s-aws status`)") from e
    data = resp["Body"]
    return data.read() if hasattr(data, "read") else bytes(data)


def _strip_specials(tokens: list[str]) -> list[str]:
    return [t for t in tokens if t not in ("<pad>", "<s>", "</s>")]


def translate(runtime: Any, endpoint_name: str, sentences: Sequence[str], *, attention: bool = False,
              content_type: str = JSON, vocab: tuple[dict[str, int], dict[str, int]] | None = None,
              max_bytes: int = MAX_PAYLOAD_BYTES, max_batch_size: int = DEFAULT_MAX_BATCH) -> list[TranslationResult]:
    """Translate ``sentences`` through ``endpoint_name``; one :class:`TranslationResult` per sentence, in order.

    ``runtime`` is a ``sagemaker-runtime`` client. RecordIO-protobuf needs ``vocab=(source, target)``
    and cannot return attention.
    """
    if isinstance(sentences, str):
        sentences = [sentences]
    results: list[TranslationResult] = []
    if content_type == JSON:
        for body, count in json_batches(sentences, attention=attention, max_bytes=max_bytes,
                                        max_batch_size=max_batch_size):
            raw = _invoke(runtime, endpoint_name, body, JSON, JSON)
            try:
                predictions = json.loads(raw)["predictions"]
            except (ValueError, KeyError, TypeError) as e:
                raise FormatError(f"response is not {{\"predictions\": [...]}}: {raw[:200]!r}",
                                  path=f"endpoint {endpoint_name}") from e
            if len(predictions) != count:
                raise FormatError(f"sent {count} sentences, got {len(predictions)} predictions",
                                  path=f"endpoint {endpoint_name}")
            results += [TranslationResult(target=p.get("target", ""), matrix=p.get("matrix") if attention else None)
                        for p in predictions]
        return results
    if content_type == RECORDIO:
        if attention:
            raise InputError("attention matrices are only returned with content_type application/json")
        if vocab is None:
            raise InputError("RecordIO-protobuf translation needs vocab=(source_vocab, target_vocab)")
        from .formats import recordio, records
        from .formats import vocab as vocab_mod

        src, trg = vocab
        id_to_token = vocab_mod.id_to_token(trg)
        ids = [vocab_mod.encode_tokens(s.split(), src) for s in sentences]
        for body, count in recordio_batches(ids, max_bytes=max_bytes, max_batch_size=max_batch_size):
            raw = _invoke(runtime, endpoint_name, body, RECORDIO, RECORDIO)
            payloads = recordio.decode_records(raw, name=f"response of endpoint {endpoint_name}")
            if len(payloads) != count:
                raise FormatError(f"sent {count} records, got {len(payloads)} back", path=f"endpoint {endpoint_name}")
            for p in payloads:
                target_ids = records.decode_ids(p, "target")
                tokens = [id_to_token[i] if 0 <= i < len(id_to_token) else "<unk>" for i in target_ids]
                results.append(TranslationResult(target=" ".join(_strip_specials(tokens))))
        return results
    raise InputError(f"content_type {content_type!r} is not supported; use {JSON} or {RECORDIO}")
