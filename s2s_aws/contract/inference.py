"""The ``/invocations`` wire format, both directions: what a client sends and reads, what the server
parses and answers (``CONTRACT.md``, "Inference formats"). The server (``s2s_algorithm.serve``), the
SDK client (:mod:`s2s_aws.runtime`) and batch transform (:mod:`s2s_aws.transform`) all use the
functions here, so a format rule exists once.

- ``application/json``: ``{"instances": [{"data": "...", "configuration": {"attention_matrix":
  "true"}}]}`` -> ``{"predictions": [{"target": "...", "matrix": [[...]]}]}``;
- ``application/jsonlines``: ``{"source": "..."}`` per line -> ``{"target": "..."}`` per line;
- ``application/x-recordio-protobuf``: Records with ``features["source"]`` ids -> Records with
  ``features["target"]`` ids.

Any input type can be answered in any output type the ``Accept`` header asks for; the default
answer type is the input type.

Server side, per-request bounds (:class:`RequestLimits`, set by the server from its settings and the
model): a sentence is cut to its first ``max_source_tokens`` tokens (ids) while it is parsed, because
the model reads no more (``max_seq_len_source``); so its attention matrix has one column per token
actually used, at most ``max_source_tokens``, and no later work sees the rest. A sentence with no
tokens (``""`` or whitespace only) is empty: its translation is ``""`` without a model call. A
request of more than ``max_instances`` sentences, or more than ``max_tokens`` source tokens (each
sentence counted up to ``max_source_tokens``), is refused with 413 naming the limit. Parse errors
are :class:`RequestError` (400/406/413/415), never a traceback.

Client side, request bodies are cut under :data:`MAX_PAYLOAD_BYTES` (SageMaker's 6 MB invocation
limit, less some headroom) and answers that do not have the contract's shape are
:class:`~s2s_aws.errors.FormatError`.

One translation is a :class:`TranslationResult` wherever it is made or read: the model's text
interface, the server, the endpoint client, local decoding and the CLI.

Imports nothing of ``s2s_aws`` above ``errors`` and no third-party package at module level.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence, Union

from ..errors import FormatError, InputError
from . import layout

__all__ = [
    "JSON",
    "JSONLINES",
    "RECORDIO",
    "SUPPORTED_TYPES",
    "INVOCATION_LIMIT_MB",
    "MAX_PAYLOAD_BYTES",
    "DEFAULT_MAX_BATCH",
    "TranslationResult",
    "RequestError",
    "RequestLimits",
    "Item",
    "normalize_content_type",
    "negotiate_accept",
    "parse_request",
    "encode_response",
    "json_instance",
    "json_batches",
    "recordio_batches",
    "decode_predictions",
    "decode_target_records",
    "to_jsonlines",
    "json_lines",
    "decode_jsonlines",
]

JSON = "application/json"
JSONLINES = "application/jsonlines"
RECORDIO = layout.RECORDIO_CONTENT_TYPE

#: every content type the server reads and writes, in order of preference
SUPPORTED_TYPES: tuple[str, ...] = (JSON, JSONLINES, RECORDIO)

# spellings seen in the wild for the same formats
_ALIASES = {
    "application/jsonl": JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/json-lines": JSONLINES,
    "application/x-ndjson": JSONLINES,
    "application/x-recordio": RECORDIO,
}

#: SageMaker's InvokeEndpoint request limit, and the server's default body cap (``S2S_MAX_PAYLOAD_MB``)
INVOCATION_LIMIT_MB = 6
#: the most bytes a client puts in one request body: the invocation limit less a little headroom
MAX_PAYLOAD_BYTES = INVOCATION_LIMIT_MB * 1024 * 1024 - 16 * 1024
#: the most sentences a client puts in one request (long batches of attention matrices make large answers)
DEFAULT_MAX_BATCH = 64

# special tokens a client drops from a RecordIO answer's text (<unk> is kept: it is a word the model wrote)
_NOT_WORDS = (layout.PAD, layout.BOS, layout.EOS)


@dataclass
class TranslationResult:
    """One translation.

    ``target``: the translated sentence, tokens separated by spaces. ``matrix``: the attention
    matrix when it was asked for (rows = target tokens, columns = the source tokens the model read:
    a sentence's first ``max_seq_len_source``), else None. Set where they are known: ``ids`` (the
    target ids: the server, which answers RecordIO with them), ``tokens`` (the target tokens) and
    ``source_tokens`` (the source tokens the model read) by the model's text interface.
    """

    target: str
    matrix: list[list[float]] | None = None
    ids: list[int] | None = None
    tokens: list[str] | None = None
    source_tokens: list[str] | None = None


# --------------------------------------------------------------------------------------------
# content types


class RequestError(Exception):
    """A request the server cannot serve; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def normalize_content_type(value: str | None) -> str | None:
    """Lower-case media type without parameters (``; charset=utf-8``), aliases resolved."""
    if not value:
        return None
    media = value.split(";", 1)[0].strip().lower()
    return _ALIASES.get(media, media)


def negotiate_accept(accept: str | None, default: str) -> str:
    """Pick the answer type for an ``Accept`` header; ``default`` when any type is acceptable.

    Raises :class:`RequestError` (406) when the header names only types the server cannot write.
    """
    if accept is None or not accept.strip():
        return default
    ranges: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = normalize_content_type(pieces[0]) or ""
        if not media:
            continue
        q = 1.0
        for param in pieces[1:]:
            name, _, val = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranges.append((-q, position, media))
    for _, _, media in sorted(ranges):
        if media in ("*/*", "application/*"):
            return default
        if media in SUPPORTED_TYPES:
            return media
    raise RequestError(
        406,
        f"cannot answer in any type named by the Accept header {accept!r}; "
        f"this server writes {', '.join(SUPPORTED_TYPES)} (or send Accept: */*)",
    )


# --------------------------------------------------------------------------------------------
# shared pieces of the JSON formats


def json_instance(sentence: str, attention: bool = False) -> dict[str, Any]:
    """One ``application/json`` instance: ``{"data": sentence}`` plus the attention request."""
    inst: dict[str, Any] = {"data": sentence}
    if attention:
        inst["configuration"] = {"attention_matrix": "true"}
    return inst


def json_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for each non-blank line of a jsonlines document.

    Split on ``"\\n"`` only: ``str.splitlines()`` also breaks at U+2028, U+0085 and other characters
    that a JSON string may hold unescaped (``json.dumps(..., ensure_ascii=False)`` writes them as they
    are), which would cut a valid line in two. A trailing ``"\\r"`` is dropped; blank lines (a trailing
    newline, separators) are not records."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield lineno, line


def _prediction(result: TranslationResult, attention: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"target": result.target}
    if attention:
        out["matrix"] = result.matrix if result.matrix is not None else []
    return out


# --------------------------------------------------------------------------------------------
# server: parsing requests


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on one request; ``None`` means unbounded (see the module docstring)."""

    max_instances: int | None = None
    max_tokens: int | None = None
    max_source_tokens: int | None = None


@dataclass
class Item:
    """One sentence to translate: text (``kind="text"``) or source ids (``kind="ids"``).

    ``tokens`` is the number of source tokens the model will read (after any cut to
    ``max_source_tokens``); 0 means the sentence is empty. Computed from ``source`` when not given.
    """

    kind: str
    source: Union[str, list[int]]
    attention: bool = False
    tokens: int = -1

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = len(self.source.split()) if isinstance(self.source, str) else len(self.source)

    def __len__(self) -> int:
        return self.tokens


def _attention_flag(config: object, where: str) -> bool:
    if config is None:
        return False
    if not isinstance(config, dict):
        raise RequestError(400, f"{where}.configuration: expected a JSON object, got {_kind(config)}")
    value = config.get("attention_matrix", False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise RequestError(
        400,
        f'{where}.configuration.attention_matrix: expected "true" or "false", got {_kind(value)}',
    )


def _kind(value: object) -> str:
    """A short description of a JSON value for messages (never the value itself when long)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 20 else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _load_json(text: str, where: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RequestError(400, f"{where} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise RequestError(400, f"{where} is nested too deeply to parse; send flat JSON objects "
                                "as the content type's format describes") from None
    except ValueError as e:  # e.g. an integer literal past Python's digit limit
        raise RequestError(400, f"{where} holds a value that cannot be read ({e}); send strings "
                                "for sentences") from None


def _decode_utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(400, f"request body is not UTF-8 text: undecodable byte at offset {e.start}") from None


class _Counter:
    """Cuts sentences to the tokens the model reads and enforces the request's limits as they are parsed."""

    def __init__(self, limits: RequestLimits | None):
        limits = limits or RequestLimits()
        self.max_instances = limits.max_instances
        self.max_tokens = limits.max_tokens
        self.cut = limits.max_source_tokens
        self.instances = 0
        self.tokens = 0

    def check_instances(self, n: int, *, exact: bool = True) -> None:
        """413 when ``n`` sentences are over the limit (``exact``: ``n`` is the request's count)."""
        if self.max_instances is not None and n > self.max_instances:
            held = f"{n}" if exact else f"more than {self.max_instances}"
            raise RequestError(
                413,
                f"the request holds {held} sentences; this server takes at most {self.max_instances} "
                "per request (S2S_MAX_INSTANCES); send fewer sentences per request "
                "(batch transform: a smaller MaxPayloadInMB)",
            )

    def _count(self, tokens: int) -> None:
        self.instances += 1
        self.check_instances(self.instances, exact=False)
        self.tokens += tokens
        if self.max_tokens is not None and self.tokens > self.max_tokens:
            counted = f", each sentence counted up to its first {self.cut}" if self.cut is not None else ""
            raise RequestError(
                413,
                f"the request holds more than {self.max_tokens} source tokens{counted}; this server takes "
                f"at most {self.max_tokens} per request (S2S_MAX_TOKENS); send fewer sentences per request "
                "(batch transform: a smaller MaxPayloadInMB)",
            )

    def text(self, data: str, attention: bool) -> Item:
        if self.cut is None:
            n = len(data.split())
        else:
            # split no further than the model reads: a 5 MB sentence costs max_source_tokens strings
            pieces = data.split(None, self.cut)
            n = min(len(pieces), self.cut)
            if len(pieces) > self.cut:
                data = " ".join(pieces[:self.cut])
        if n == 0:
            data = ""  # whitespace only: the same sentence as ""
        self._count(n)
        return Item("text", data, attention, n)

    def ids(self, ids: list[int]) -> Item:
        ids = [int(t) for t in (ids[:self.cut] if self.cut is not None else ids)]
        self._count(len(ids))
        return Item("ids", ids, False, len(ids))


def _parse_json(body: bytes, counter: _Counter) -> list[Item]:
    doc = _load_json(_decode_utf8(body), "request body")
    if not isinstance(doc, dict) or "instances" not in doc:
        got = _kind(doc) if not isinstance(doc, dict) else 'an object without "instances"'
        raise RequestError(
            400,
            'request body: expected a JSON object {"instances": [{"data": "tokenized source"}, ...]}, '
            f"got {got}",
        )
    instances = doc["instances"]
    if not isinstance(instances, list):
        raise RequestError(400, f"instances: expected a list of objects, got {_kind(instances)}")
    counter.check_instances(len(instances))
    items = []
    for i, inst in enumerate(instances):
        where = f"instances[{i}]"
        data = _source_field(inst, "data", where, " (the tokenized source sentence)")
        items.append(counter.text(data, _attention_flag(inst.get("configuration"), where)))
    return items


def _source_field(doc: Any, field: str, where: str, what: str) -> str:
    """``doc[field]``, the source sentence of one instance or line; 400 naming ``where`` otherwise."""
    if not isinstance(doc, dict):
        raise RequestError(400, f'{where}: expected an object {{"{field}": "tokenized source"}}, got {_kind(doc)}')
    if field not in doc:
        raise RequestError(400, f'{where}: missing field "{field}" (the tokenized source sentence)')
    value = doc[field]
    if not isinstance(value, str):
        raise RequestError(400, f"{where}.{field}: expected a string{what}, got {_kind(value)}")
    return value


def _parse_jsonlines(body: bytes, counter: _Counter) -> list[Item]:
    items = []
    for lineno, line in json_lines(_decode_utf8(body)):
        where = f"line {lineno}"
        doc = _load_json(line, where)
        source = _source_field(doc, "source", where, "")
        items.append(counter.text(source, _attention_flag(doc.get("configuration"), where)))
    return items


def _parse_recordio(body: bytes, src_vocab_size: int | None, counter: _Counter) -> list[Item]:
    from . import recordio, records

    try:
        payloads = recordio.decode_records(body, name="request body")
    except FormatError as e:
        raise RequestError(400, f"RecordIO framing: {e}") from None
    counter.check_instances(len(payloads))
    items = []
    for i, payload in enumerate(payloads):
        try:
            ids = records.decode_ids(payload, records.SOURCE)
        except FormatError as e:
            raise RequestError(400, f'record {i}: {e} (expected features["source"] as an int32 tensor)') from None
        except Exception as e:  # protobuf's DecodeError and friends
            raise RequestError(400, f"record {i}: not a Record protobuf ({type(e).__name__}: {e})") from None
        # min/max run in C: a 5-million-id record is checked in milliseconds, not a Python loop
        if src_vocab_size is not None and ids and (min(ids) < 0 or max(ids) >= src_vocab_size):
            bad = next(t for t in ids if t < 0 or t >= src_vocab_size)
            raise RequestError(
                400,
                f'record {i}: features["source"] holds id {bad}, outside the source vocabulary '
                f"(ids 0..{src_vocab_size - 1}); encode with the model's vocab.src.json",
            )
        items.append(counter.ids(ids))
    return items


def parse_request(content_type: str | None, body: bytes, *, src_vocab_size: int | None = None,
                  limits: RequestLimits | None = None) -> list[Item]:
    """Turn a request body into :class:`Item` objects (400/413/415 :class:`RequestError` when it cannot).

    With ``limits``, sentences are cut to ``limits.max_source_tokens`` and a request over
    ``max_instances`` sentences or ``max_tokens`` source tokens is a 413 naming the limit.
    """
    media = normalize_content_type(content_type)
    counter = _Counter(limits)
    if media == JSON:
        return _parse_json(body, counter)
    if media == JSONLINES:
        return _parse_jsonlines(body, counter)
    if media == RECORDIO:
        return _parse_recordio(body, src_vocab_size, counter)
    raise RequestError(
        415,
        f"unsupported Content-Type {content_type!r}; send one of {', '.join(SUPPORTED_TYPES)}",
    )


# --------------------------------------------------------------------------------------------
# server: encoding answers


def encode_response(accept: str, items: Sequence[Item], results: Sequence[TranslationResult]) -> bytes:
    """Encode results (one per item, same order) in the negotiated answer type."""
    if accept == JSON:
        doc = {"predictions": [_prediction(r, it.attention) for it, r in zip(items, results)]}
        return json.dumps(doc, ensure_ascii=False).encode("utf-8")
    if accept == JSONLINES:
        lines = [json.dumps(_prediction(r, it.attention), ensure_ascii=False) for it, r in zip(items, results)]
        return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    if accept == RECORDIO:
        from . import recordio, records

        for r in results:
            if r.ids is None:  # the server's results always carry ids; a result without is a bug
                raise ValueError(f"cannot answer {RECORDIO} for a translation without target ids: {r.target!r}")
        return recordio.encode_records(records.encode_ids(records.TARGET, r.ids) for r in results)  # type: ignore[arg-type]
    raise ValueError(f"cannot encode {accept!r}")  # negotiate_accept never returns anything else


# --------------------------------------------------------------------------------------------
# client: request bodies


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
        item = json.dumps(json_instance(sentence, attention), ensure_ascii=False)
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
    from . import recordio, records

    batch: list[bytes] = []
    size = 0
    for i, ids in enumerate(id_lists):
        payload = records.encode_ids(records.SOURCE, list(ids))
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


def to_jsonlines(sentences: Iterable[str]) -> bytes:
    """An ``application/jsonlines`` request: ``{"source": ...}`` per line (UTF-8)."""
    return "".join(json.dumps({"source": s}, ensure_ascii=False) + "\n" for s in sentences).encode("utf-8")


# --------------------------------------------------------------------------------------------
# client: answers


def decode_predictions(body: bytes, count: int, *, attention: bool, where: str) -> list[TranslationResult]:
    """Read an ``application/json`` answer to ``count`` sentences; :class:`FormatError` (``path=where``)
    when it is not ``{"predictions": [...]}`` with one prediction per sentence."""
    try:
        predictions = json.loads(body)["predictions"]
        if not isinstance(predictions, list) or not all(isinstance(p, dict) for p in predictions):
            raise TypeError("predictions is not a list of objects")
    except (ValueError, KeyError, TypeError) as e:
        raise FormatError(f"response is not {{\"predictions\": [...]}}: {body[:200]!r}", path=where) from e
    if len(predictions) != count:
        raise FormatError(f"sent {count} sentences, got {len(predictions)} predictions", path=where)
    return [TranslationResult(target=p.get("target", ""), matrix=p.get("matrix") if attention else None)
            for p in predictions]


def decode_target_records(body: bytes, count: int, id_to_token: Sequence[str], *,
                          where: str) -> list[TranslationResult]:
    """Read an ``application/x-recordio-protobuf`` answer to ``count`` sentences: ``features["target"]``
    ids turned into text through the target vocabulary (``id_to_token``; unknown ids are ``<unk>``,
    padding and sentence markers dropped). :class:`FormatError` when the count differs."""
    from . import recordio, records

    payloads = recordio.decode_records(body, name=f"response of {where}")
    if len(payloads) != count:
        raise FormatError(f"sent {count} records, got {len(payloads)} back", path=where)
    results = []
    for p in payloads:
        target_ids = records.decode_ids(p, records.TARGET)
        tokens = [id_to_token[i] if 0 <= i < len(id_to_token) else layout.UNK for i in target_ids]
        results.append(TranslationResult(target=" ".join(t for t in tokens if t not in _NOT_WORDS)))
    return results


def decode_jsonlines(body: bytes, *, where: str) -> list[dict[str, Any]]:
    """Every line of an ``application/jsonlines`` answer (a batch transform's ``.out`` file) as a dict,
    in order; :class:`FormatError` (``path=where``) for a line that is not JSON."""
    out: list[dict[str, Any]] = []
    for n, line in json_lines(body.decode("utf-8")):
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise FormatError(f"line {n} is not JSON: {line[:100]!r}", path=where) from e
    return out
