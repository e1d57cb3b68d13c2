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

import logging
from typing import Any, Sequence

from ._aws import error_code, error_message
from .contract.inference import (DEFAULT_MAX_BATCH, JSON, MAX_PAYLOAD_BYTES, RECORDIO, TranslationResult,
                                 decode_predictions, decode_target_records, json_batches, recordio_batches)
from .errors import AWSOperationError, EndpointFailed, InputError

logger = logging.getLogger(__name__)

__all__ = ["TranslationResult", "translate", "JSON", "RECORDIO", "MAX_PAYLOAD_BYTES", "json_batches",
           "recordio_batches"]


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


def translate(runtime: Any, endpoint_name: str, sentences: Sequence[str], *, attention: bool = False,
              content_type: str = JSON, vocab: tuple[dict[str, int], dict[str, int]] | None = None,
              max_bytes: int = MAX_PAYLOAD_BYTES, max_batch_size: int = DEFAULT_MAX_BATCH) -> list[TranslationResult]:
    """Translate ``sentences`` through ``endpoint_name``; one :class:`TranslationResult` per sentence, in order.

    ``runtime`` is a ``sagemaker-runtime`` client. RecordIO-protobuf needs ``vocab=(source, target)``
    and cannot return attention.
    """
    if isinstance(sentences, str):
        sentences = [sentences]
    where = f"endpoint {endpoint_name}"
    results: list[TranslationResult] = []
    if content_type == JSON:
        for body, count in json_batches(sentences, attention=attention, max_bytes=max_bytes,
                                        max_batch_size=max_batch_size):
            raw = _invoke(runtime, endpoint_name, body, JSON, JSON)
            results += decode_predictions(raw, count, attention=attention, where=where)
        return results
    if content_type == RECORDIO:
        if attention:
            raise InputError("attention matrices are only returned with content_type application/json")
        if vocab is None:
            raise InputError("RecordIO-protobuf translation needs vocab=(source_vocab, target_vocab)")
        from .contract import vocab as vocab_mod

        src, trg = vocab
        id_to_token = vocab_mod.id_to_token(trg)
        ids = [vocab_mod.encode_tokens(s.split(), src) for s in sentences]
        for body, count in recordio_batches(ids, max_bytes=max_bytes, max_batch_size=max_batch_size):
            raw = _invoke(runtime, endpoint_name, body, RECORDIO, RECORDIO)
            results += decode_target_records(raw, count, id_to_token, where=where)
        return results
    raise InputError(f"content_type {content_type!r} is not supported; use {JSON} or {RECORDIO}")
