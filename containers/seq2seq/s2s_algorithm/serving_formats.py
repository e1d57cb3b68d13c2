"""Request parsing, response encoding and content negotiation for the inference server.

Pure functions, no torch and no web framework, so every format rule can be tested on its own.
The wire formats are those of the contract (``CONTRACT.md``, "Inference formats"):

- ``application/json``: ``{"instances": [{"data": "...", "configuration": {"attention_matrix":
  "true"}}]}`` -> ``{"predictions": [{"target": "...", "matrix": [[...]]}]}``;
- ``application/jsonlines``: ``{"source": "..."}`` per line -> ``{"target": "..."}`` per line;
- ``application/x-recordio-protobuf``: Records with ``features["source"]`` ids -> Records with
  ``features["target"]`` ids.

Any input type can be answered in any output type the ``Accept`` header asks for; the default
answer type is the input type.

Per-request bounds (:class:`RequestLimits`, set by the server from its settings and the model):
a sentence is cut to its first ``max_source_tokens`` tokens (ids) while it is parsed, because the
model reads no more (``max_seq_len_source``); so its attention matrix has one column per token
actually used, at most ``max_source_tokens``, and no later work sees the rest. A sentence with no
tokens (``""`` or whitespace only) is empty: its translation is ``""`` without a model call. A
request of more than ``max_instances`` sentences, or more than ``max_tokens`` source tokens (each
sentence counted up to ``max_source_tokens``), is refused with 413 naming the limit.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Sequence, Union

from s2s_aws.errors import FormatError

logger = logging.getLogger(__name__)

__all__ = [
    "JSON",
    "JSONLINES",
    "RECORDIO",
    "SUPPORTED_TYPES",
    "RequestError",
    "RequestLimits",
    "Item",
    "Result",
    "normalize_content_type",
    "negotiate_accept",
    "parse_request",
    "encode_response",
]

JSON = "application/json"
JSONLINES = "application/jsonlines"
RECORDIO = "application/x-recordio-protobuf"

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


class RequestError(Exception):
    """A request the server cannot serve; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


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


@dataclass
class Result:
    """One translation, in every form an answer may need."""

    target: str
    ids: list[int]
    matrix: list[list[float]] | None = None


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
# parsing


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
        if not isinstance(inst, dict):
            raise RequestError(400, f'{where}: expected an object {{"data": "tokenized source"}}, got {_kind(inst)}')
        if "data" not in inst:
            raise RequestError(400, f'{where}: missing field "data" (the tokenized source sentence)')
        data = inst["data"]
        if not isinstance(data, str):
            raise RequestError(400, f"{where}.data: expected a string (the tokenized source sentence), got {_kind(data)}")
        items.append(counter.text(data, _attention_flag(inst.get("configuration"), where)))
    return items


def _parse_jsonlines(body: bytes, counter: _Counter) -> list[Item]:
    items = []
    # split on "\n" only: str.splitlines() also breaks at U+2028, U+0085 and other characters that a
    # JSON string may hold unescaped, which would cut a valid line in two
    for lineno, line in enumerate(_decode_utf8(body).split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue  # blank lines (a trailing newline, separators) are not records
        where = f"line {lineno}"
        doc = _load_json(line, where)
        if not isinstance(doc, dict):
            raise RequestError(400, f'{where}: expected an object {{"source": "tokenized source"}}, got {_kind(doc)}')
        if "source" not in doc:
            raise RequestError(400, f'{where}: missing field "source" (the tokenized source sentence)')
        source = doc["source"]
        if not isinstance(source, str):
            raise RequestError(400, f"{where}.source: expected a string, got {_kind(source)}")
        items.append(counter.text(source, _attention_flag(doc.get("configuration"), where)))
    return items


def _parse_recordio(body: bytes, src_vocab_size: int | None, counter: _Counter) -> list[Item]:
    from s2s_aws.formats import recordio, records

    try:
        payloads = recordio.decode_records(body, name="request body")
    except FormatError as e:
        raise RequestError(400, f"RecordIO framing: {e}") from None
    counter.check_instances(len(payloads))
    items = []
    for i, payload in enumerate(payloads):
        try:
            ids = records.decode_ids(payload, "source")
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
# encoding


def _prediction(result: Result, item: Item, key: str) -> dict:
    out: dict = {key: result.target}
    if item.attention:
        out["matrix"] = result.matrix if result.matrix is not None else []
    return out


def encode_response(accept: str, items: Sequence[Item], results: Sequence[Result]) -> bytes:
    """Encode results (one per item, same order) in the negotiated answer type."""
    if accept == JSON:
        doc = {"predictions": [_prediction(r, it, "target") for it, r in zip(items, results)]}
        return json.dumps(doc, ensure_ascii=False).encode("utf-8")
    if accept == JSONLINES:
        lines = [json.dumps(_prediction(r, it, "target"), ensure_ascii=False) for it, r in zip(items, results)]
        return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    if accept == RECORDIO:
        from s2s_aws.formats import recordio, records

        return recordio.encode_records(records.encode_ids("target", r.ids) for r in results)
    raise ValueError(f"cannot encode {accept!r}")  # negotiate_accept never returns anything else
