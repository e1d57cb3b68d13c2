"""The inference server ``s2s-serve`` (the container's ``serve`` program).

HTTP on ``$SAGEMAKER_BIND_TO_PORT`` or 8080, the SageMaker hosting interface:

- ``GET /ping``: 200 once the model is loaded, 503 while it loads;
- ``POST /invocations``: ``application/json``, ``application/jsonlines`` (batch transform) and
  ``application/x-recordio-protobuf`` bodies, answered in the type ``Accept`` asks for
  (see :mod:`s2s_aws.contract.inference`);
- ``GET /execution-parameters``: what batch transform should send (``MaxPayloadInMB=6``).

Why starlette + uvicorn (ASGI) rather than a WSGI stack such as gunicorn + flask: dynamic batching
needs many requests in flight at once, waiting a few milliseconds for each other and then sharing
one decode call. In asyncio that is a queue and a timer (:mod:`.serving_batcher`); the model itself
runs in one worker thread per model copy, and large bodies are parsed and large answers encoded in
a small thread pool, so the event loop stays responsive (``/ping`` answers while a batch decodes or
a 6 MB body is parsed). A WSGI stack would need a thread or process per waiting request and
cross-process plumbing to merge them, and several worker processes would each load a model copy.
Here there is exactly one model copy per device (one per GPU, or one on the CPU).

Settings come from the environment (invalid values stop the server with a clear message):

=========================  ======================================================  =========
``S2S_MAX_BATCH_SIZE``     most sentences decoded in one call                      64
``S2S_BATCH_WINDOW_MS``    longest the oldest queued sentence waits for others     5
                           (<= 0.4 x recent decode time; 0 for a lone client)
``S2S_DYNAMIC_BATCHING``   ``false``: decode each request on its own               true
``S2S_REQUEST_TIMEOUT_S``  a request not answered this long after it arrived        55
                           answers 504 (covers reading, parsing, decoding, encoding)
``S2S_READ_TIMEOUT_S``     a body not received within this answers 408, and the    20
                           connection is closed (a stalled or dripping client)
``S2S_MAX_PAYLOAD_MB``     request body cap (413 above it)                         6
``S2S_MAX_INSTANCES``      most sentences in one request (413 above it)            600000
``S2S_MAX_TOKENS``         most source tokens in one request, each sentence        3200000
                           counted up to ``max_seq_len_source`` (413 above it)
``S2S_BEAM_SIZE``          beam size (1 = greedy)                     the model's ``beam_size``
=========================  ======================================================  =========

Bounded work per request: a sentence is cut to the model's ``max_seq_len_source`` tokens when the
body is parsed, so its attention matrix has one column per source token actually used (at most
``max_seq_len_source``; the tokens after them are not read) and one row per output token (at most
``max_seq_len_target``). A sentence with no tokens (``""`` or whitespace only) translates to ``""``.
The instance and token caps' defaults are far above what a 6 MB batch of real sentences holds (a
6 MB jsonlines batch of the enja training set's English side: 131,000 sentences, 1.02 M tokens), so
they refuse only degenerate requests (for example 400,000 one-word sentences). Large requests are
decoded in slices interleaved with the other requests' work (:mod:`.serving_batcher`).

Request bodies are never logged at INFO level (DEBUG logs sizes and counts only). SIGTERM stops
accepting connections, answers 503 to requests whose body has not fully arrived (their connection
is closed), finishes the requests in flight, then exits.

Example::

    S2S_ML_ROOT=/tmp/ml s2s-serve --port 8080 &
    curl -s localhost:8080/invocations -H 'Content-Type: application/json' \\
         -d '{"instances": [{"data": "how are you ?", "configuration": {"attention_matrix": "true"}}]}'
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from s2s_aws.contract.inference import (INVOCATION_LIMIT_MB, RequestError, RequestLimits, encode_response,
                                       negotiate_accept, normalize_content_type, parse_request)
from s2s_aws.errors import InputError

from .serving_batcher import DynamicBatcher, ModelRunner

logger = logging.getLogger(__name__)

__all__ = ["ServerSettings", "create_app", "load_translators", "main"]

MIB = 1024 * 1024
# a body declared or streamed past this is not read to its end: the connection is dropped
_DRAIN_LIMIT = 64 * MIB
# bodies above this size are parsed in the helper thread pool (smaller ones cost less than the hop)
_PARSE_IN_THREAD_BYTES = 64 * 1024
# answers above this many items or attention cells are encoded in the helper thread pool
_ENCODE_IN_THREAD_COST = 2048


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r} is not an integer; set it to an integer >= {minimum} or unset it") from None
    if value < minimum:
        raise InputError(f"{name}={value} is below {minimum}; set it to an integer >= {minimum} or unset it")
    return value


def _env_float(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r} is not a number; set it to a number >= {minimum} or unset it") from None
    if not value >= minimum:
        raise InputError(f"{name}={value} is below {minimum}; set it to a number >= {minimum} or unset it")
    return value


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise InputError(f"{name}={raw!r} is not a boolean; set it to true or false or unset it")


@dataclass
class ServerSettings:
    """Tunables of the server (see the module docstring for the environment variables)."""

    max_batch_size: int = 64
    batch_window_ms: float = 5.0
    dynamic_batching: bool = True
    request_timeout_s: float = 55.0
    read_timeout_s: float = 20.0
    max_payload_bytes: int = 6 * MIB
    # the defaults refuse no body within the 6 MB cap (the built-in's limit): the smallest JSON
    # instance is 11 bytes and a token takes at least 2, so 6 MiB holds < 600,000 / 3,200,000
    max_instances: int = 600_000
    max_tokens: int = 3_200_000
    beam_size: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ServerSettings":
        """Read the ``S2S_*`` variables; :class:`InputError` names a bad one."""
        env = os.environ if env is None else env
        beam = _env_int(env, "S2S_BEAM_SIZE", 0, 1) if env.get("S2S_BEAM_SIZE", "").strip() else None
        return cls(
            max_batch_size=_env_int(env, "S2S_MAX_BATCH_SIZE", 64, 1),
            batch_window_ms=_env_float(env, "S2S_BATCH_WINDOW_MS", 5.0, 0.0),
            dynamic_batching=_env_bool(env, "S2S_DYNAMIC_BATCHING", True),
            request_timeout_s=_env_float(env, "S2S_REQUEST_TIMEOUT_S", 55.0, 0.001),
            read_timeout_s=_env_float(env, "S2S_READ_TIMEOUT_S", 20.0, 0.001),
            max_payload_bytes=_env_int(env, "S2S_MAX_PAYLOAD_MB", INVOCATION_LIMIT_MB, 1) * MIB,
            max_instances=_env_int(env, "S2S_MAX_INSTANCES", cls.max_instances, 1),
            max_tokens=_env_int(env, "S2S_MAX_TOKENS", cls.max_tokens, 1),
            beam_size=beam,
        )


@dataclass
class _State:
    settings: ServerSettings
    status: str = "loading"            # loading -> ready | failed
    error: str | None = None
    batcher: DynamicBatcher | None = None
    src_vocab_size: int | None = None
    limits: RequestLimits = field(default_factory=RequestLimits)
    started: float = field(default_factory=time.monotonic)
    stopping: bool = False
    # the read timeouts of bodies being received (a graceful stop expires them at once)
    body_reads: set = field(default_factory=set)
    helpers: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="s2s-parse"))

    def begin_stop(self) -> None:
        """The server is stopping: bodies still arriving are answered 503 now (call on the event loop)."""
        self.stopping = True
        now = asyncio.get_running_loop().time()
        for timer in list(self.body_reads):
            timer.reschedule(now)

    async def become_ready(self, translators: Sequence[Any]) -> None:
        s = self.settings
        runners = [
            ModelRunner(t, name=f"model-{getattr(t, 'device', i)}", max_batch_size=s.max_batch_size,
                        beam_size=s.beam_size)
            for i, t in enumerate(translators)
        ]
        batcher = DynamicBatcher(runners, max_batch_size=s.max_batch_size, window_s=s.batch_window_ms / 1000.0,
                                 enabled=s.dynamic_batching)
        await batcher.start()
        vocab = translators[0].src_vocab
        self.src_vocab_size = max(vocab.values()) + 1 if vocab else 0
        hp = getattr(translators[0], "hp", None)
        max_src = getattr(hp, "max_seq_len_source", None)
        self.limits = RequestLimits(max_instances=s.max_instances, max_tokens=s.max_tokens,
                                    max_source_tokens=int(max_src) if max_src is not None else None)
        self.batcher = batcher
        self.status = "ready"
        logger.info("model ready after %.1f s: %d copy(ies), dynamic batching %s (max %d sentences, %.1f ms window)",
                    time.monotonic() - self.started, len(runners), "on" if s.dynamic_batching else "off",
                    s.max_batch_size, s.batch_window_ms)


def _error(status: int, message: str, close: bool = False) -> Response:
    return PlainTextResponse(message + "\n", status_code=status, headers={"Connection": "close"} if close else None)


class _BodyDeadline:
    """Cancels the current task at ``when`` (loop time) unless cancelled first; a graceful stop brings
    it forward with :meth:`reschedule`. (``asyncio.timeout_at`` does this from Python 3.11; the
    container and the SDK support 3.10.)"""

    def __init__(self, when: float):
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self.expired = False
        self._handle = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def reschedule(self, when: float) -> None:
        if not self.expired:
            self._handle.cancel()
            self._handle = self._loop.call_at(when, self._expire)

    def cancel(self) -> None:
        self._handle.cancel()


async def _read_body(request: Request, state: _State, deadline: float) -> bytes:
    """The request body; 413 when it is over the payload cap (declared or actually sent), 408 when it
    has not arrived by ``deadline`` (loop time), 503 when the server stops while it arrives."""
    timer = _BodyDeadline(deadline if not state.stopping else 0.0)
    state.body_reads.add(timer)
    try:
        return await _read_body_within(request, state.settings.max_payload_bytes)
    except asyncio.CancelledError:
        if not timer.expired:
            raise  # cancelled by someone else (uvicorn): not ours to answer
        task = asyncio.current_task()
        if hasattr(task, "uncancel"):  # Python 3.11+: the cancellation was ours and is handled here
            task.uncancel()
        if state.stopping:
            raise RequestError(503, "the server is shutting down and this request's body had not fully "
                                    "arrived; send it again (to another instance)") from None
        raise RequestError(408, f"the request body did not arrive within {state.settings.read_timeout_s:g} s "
                                "(S2S_READ_TIMEOUT_S); send the whole body at once") from None
    except ClientDisconnect:
        # the client hung up before its body arrived: nobody to answer (uvicorn drops what is sent)
        raise RequestError(400, "the client disconnected before the request body arrived") from None
    finally:
        timer.cancel()
        state.body_reads.discard(timer)


async def _read_body_within(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_large = False
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise RequestError(400, f"Content-Length header {declared!r} is not a number") from None
        too_large = n > limit
        if n > _DRAIN_LIMIT:
            raise RequestError(413, _too_large_message(n, limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            too_large = True
        if too_large:
            if size > _DRAIN_LIMIT:
                break
            continue  # read the rest so the client gets the 413 cleanly, but keep none of it
        chunks.append(chunk)
    if too_large:
        raise RequestError(413, _too_large_message(size, limit))
    return b"".join(chunks)


def _parse_detached(content_type: str | None, body: bytes, state: _State) -> tuple[list, tuple[int, str] | None]:
    """``parse_request`` returning ``(items, None)`` or ``([], (status, message))``.

    Not raising matters for memory: an exception raised in the parser carries a traceback whose frames
    hold the parsed document (200,000 dicts for a request over the sentence cap), and once it has
    crossed the thread pool's futures it sits in a reference cycle that only a full garbage collection
    frees. Four clients sending such requests took the server to 3.3 GB; here the exception dies with
    this frame."""
    try:
        return parse_request(content_type, body, src_vocab_size=state.src_vocab_size, limits=state.limits), None
    except RequestError as e:
        return [], (e.status, e.message)


def _encoding_cost(items: Sequence[Any], results: Sequence[Any]) -> int:
    """Items plus attention cells to write: above :data:`_ENCODE_IN_THREAD_COST` the answer is
    encoded off the event loop."""
    cost = len(items)
    for it, r in zip(items, results):
        if it.attention and r.matrix:
            cost += len(r.matrix) * len(r.matrix[0])
    return cost


def _loggable(header: str | None, limit: int = 64) -> str:
    """A client-supplied header value fit for the log: quoted, at most ``limit`` characters."""
    if header is None:
        return "(none)"
    return repr(header[:limit]) + ("..." if len(header) > limit else "")


def _too_large_message(size: int, limit: int) -> str:
    return (f"request body is larger than the {limit / MIB:g} MB limit (at least {size} bytes); "
            f"send fewer sentences per request (batch transform: MaxPayloadInMB={limit // MIB})")


def create_app(translators: Any = None, *, loader: Callable[[], Sequence[Any]] | None = None,
               settings: ServerSettings | None = None,
               on_load_failure: Callable[[BaseException], None] | None = None) -> Starlette:
    """Build the ASGI app.

    Give either ``translators`` (a :class:`~s2s_algorithm.translator.Translator`, or one per device;
    ready at once) or ``loader`` (called in a thread at start-up; ``/ping`` answers 503 until it
    returns). ``on_load_failure`` is called when the loader raises (``main`` stops the server).
    The app's state is at ``app.state.s2s`` (``.batcher`` for counters).
    """
    if (translators is None) == (loader is None):
        raise ValueError("create_app needs exactly one of translators= or loader=")
    if translators is not None and not isinstance(translators, (list, tuple)):
        translators = [translators]
    state = _State(settings=settings or ServerSettings())

    async def _load() -> None:
        try:
            loaded = await asyncio.to_thread(loader)  # type: ignore[arg-type]
            if not loaded:
                raise RuntimeError("the model loader returned no model")
            await state.become_ready(list(loaded))
        except Exception as e:
            state.status = "failed"
            state.error = f"{type(e).__name__}: {e}"
            logger.exception("the model failed to load; the server cannot serve")
            if on_load_failure is not None:
                on_load_failure(e)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        load_task = None
        if translators is not None:
            await state.become_ready(translators)
        else:
            load_task = asyncio.create_task(_load())
        try:
            yield
        finally:
            if load_task is not None and not load_task.done():
                load_task.cancel()
            state.stopping = True
            if state.batcher is not None:
                await state.batcher.stop(timeout=state.settings.request_timeout_s)
            state.helpers.shutdown(wait=False, cancel_futures=True)
            logger.info("server stopped")

    async def ping(request: Request) -> Response:
        if state.status == "ready":
            return JSONResponse({"status": "ready"})
        if state.status == "failed":
            return JSONResponse({"status": "failed", "error": state.error}, status_code=503)
        return JSONResponse({"status": "loading"}, status_code=503)

    async def execution_parameters(request: Request) -> Response:
        copies = len(state.batcher.runners) if state.batcher is not None else 1
        return JSONResponse({
            "MaxConcurrentTransforms": max(2, 2 * copies),
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": state.settings.max_payload_bytes // MIB,
        })

    async def invocations(request: Request) -> Response:
        loop = asyncio.get_running_loop()
        settings = state.settings
        arrived = loop.time()
        deadline = arrived + settings.request_timeout_s
        content_type = request.headers.get("content-type")
        try:
            body = await _read_body(request, state, min(deadline, arrived + settings.read_timeout_s))
            if state.status != "ready":
                if state.status == "failed":
                    raise RequestError(503, f"the model failed to load ({state.error}); see the server log")
                raise RequestError(503, "the model is still loading; retry once GET /ping answers 200")
            media = normalize_content_type(content_type)
            accept = negotiate_accept(request.headers.get("accept"), default=media or "")
            parse = functools.partial(_parse_detached, content_type, body, state)
            if len(body) > _PARSE_IN_THREAD_BYTES:
                items, refusal = await asyncio.wait_for(loop.run_in_executor(state.helpers, parse),
                                                        max(0.0, deadline - loop.time()))
            else:
                items, refusal = parse()
            if refusal is not None:
                raise RequestError(*refusal)
        except RequestError as e:
            logger.info("answered %d to a %s request of %s bytes", e.status, _loggable(content_type),
                        _loggable(request.headers.get("content-length", "?")))
            logger.debug("%d: %s", e.status, e.message)
            return _error(e.status, e.message, close=e.status == 408 or state.stopping)
        except asyncio.TimeoutError:
            return _timed_out(f"a request of {len(body)} bytes was not parsed")
        del body
        logger.debug("%s request: %d sentences, answer as %s", media, len(items), accept)
        assert state.batcher is not None
        try:
            results = await asyncio.wait_for(state.batcher.submit(items), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return _timed_out(f"a request of {len(items)} sentences was not decoded")
        except Exception as e:
            logger.error("the model failed on a request of %d sentences: %s: %s", len(items), type(e).__name__, e,
                         exc_info=logger.isEnabledFor(logging.DEBUG))
            return _error(500, f"the model failed to translate this request: {type(e).__name__}: {e}")
        encode = functools.partial(encode_response, accept, items, results)
        if _encoding_cost(items, results) > _ENCODE_IN_THREAD_COST:
            try:
                answer = await asyncio.wait_for(loop.run_in_executor(state.helpers, encode),
                                                max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return _timed_out(f"the answer to a request of {len(items)} sentences was not encoded")
        else:
            answer = encode()
        return Response(answer, media_type=accept)

    def _timed_out(what: str) -> Response:
        timeout = state.settings.request_timeout_s
        logger.warning("%s within %g s", what, timeout)
        return _error(504, f"the translation did not finish within {timeout:g} s (S2S_REQUEST_TIMEOUT_S); "
                           "send fewer or shorter sentences per request")

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/execution-parameters", execution_parameters, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.s2s = state
    return app


def load_translators(model_dir: str | os.PathLike[str]) -> list[Any]:
    """One :class:`~s2s_algorithm.translator.Translator` per device: each GPU, or the CPU."""
    import torch

    from .translator import load_translator

    if torch.cuda.is_available():
        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    else:
        devices = ["cpu"]
    logger.info("loading the model from %s onto %s", model_dir, ", ".join(devices))
    return [load_translator(model_dir, device=d) for d in devices]


def _default_model_dir() -> Path:
    from .paths import MLPaths

    return MLPaths().model_dir


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="s2s-serve", description="Serve a trained s2s model over HTTP (SageMaker hosting).")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=None,
                   help="port (default $SAGEMAKER_BIND_TO_PORT or 8080)")
    p.add_argument("--model-dir", default=None, help="model directory (default $S2S_ML_ROOT/model, /opt/ml/model)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, telling the app when a graceful stop begins: bodies still arriving are
        answered 503 at once instead of holding the stop until uvicorn's own timeout cancels them
        (which logs ERROR tracebacks and answers 500)."""

        def __init__(self, config: Any, state: _State):
            super().__init__(config)
            self._s2s_state = state

        async def shutdown(self, sockets: Any = None) -> None:
            self._s2s_state.begin_stop()
            await super().shutdown(sockets=sockets)

    return Server


def main(argv: list[str] | None = None) -> int:
    """Console script ``s2s-serve``: load the model and serve until SIGTERM/SIGINT."""
    import uvicorn

    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = ServerSettings.from_env()
        port = args.port if args.port is not None else _env_int(os.environ, "SAGEMAKER_BIND_TO_PORT", 8080, 1)
    except InputError as e:
        print(f"s2s-serve: error: {e}", file=sys.stderr)
        return 2
    model_dir = Path(args.model_dir) if args.model_dir else _default_model_dir()
    if not model_dir.is_dir():
        print(f"s2s-serve: error: model directory {model_dir} does not exist; pass --model-dir or set "
              "S2S_ML_ROOT to the folder that holds model/", file=sys.stderr)
        return 2

    server: uvicorn.Server | None = None

    def stop_on_failure(exc: BaseException) -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(loader=lambda: load_translators(model_dir), settings=settings, on_load_failure=stop_on_failure)
    config = uvicorn.Config(app, host=args.host, port=port, log_level=args.log_level, lifespan="on",
                            timeout_graceful_shutdown=int(settings.request_timeout_s) + 5,
                            timeout_keep_alive=75)
    server = _server_class()(config, app.state.s2s)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT (in-flight requests finish), then re-raises the
    # signal under the handlers it found; these make that re-raise a no-op, so a graceful stop exits 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)
    server.run()
    state: _State = app.state.s2s
    if state.status == "failed":
        print(f"s2s-serve: error: the model in {model_dir} failed to load: {state.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
