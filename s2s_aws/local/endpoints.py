"""Endpoints of the local stack: one serve process per endpoint, and InvokeEndpoint routed to it.

A model's ``ModelDataUrl`` (``model.tar.gz``) is downloaded from the local S3 and unpacked into
``endpoints/<name>/<generation>/model``; the serve program runs there on a free port with
``S2S_ML_ROOT`` and ``SAGEMAKER_BIND_TO_PORT`` set, and the endpoint is InService once ``GET /ping``
answers 200. UpdateEndpoint starts the new generation, waits for its ping, switches traffic, and only
then drains and stops the old process, so no request fails during an update.
"""
from __future__ import annotations

import collections
import http.client
import logging
import shutil
import tarfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..contract.layout import MODEL_ARCHIVE
from .support import (
    ACCOUNT_ID, ApiError, Context, LogShipper, child_env, download_prefix, free_port, now,
    parse_s3_uri, pump_output, start_process, terminate,
)

logger = logging.getLogger(__name__)

INVOKE_TIMEOUT_S = 60.0


class ServeFailed(Exception):
    """The serve program died or never answered /ping."""


def fetch_model(ctx: Context, model: dict, dest: Path) -> Path:
    """Download and unpack a model's artifacts into ``dest/model``; returns that folder."""
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    url = container.get("ModelDataUrl")
    if not url:
        raise ServeFailed(f"model {model['ModelName']!r} has no ModelDataUrl; create the model with "
                          "PrimaryContainer.ModelDataUrl set to the training job's model.tar.gz")
    model_dir = dest / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    if url.endswith(".tar.gz"):
        bucket, key = parse_s3_uri(url)
        archive = dest / MODEL_ARCHIVE
        try:
            ctx.s3.download_file(bucket, key, str(archive))
        except Exception as e:
            raise ServeFailed(f"could not download the model artifacts {url}: {e}") from e
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(model_dir, filter="data")
        except (tarfile.TarError, OSError) as e:
            raise ServeFailed(f"the model artifacts {url} are not a readable .tar.gz: {e}") from e
        archive.unlink()
    else:
        try:
            download_prefix(ctx.s3, url, model_dir)
        except Exception as e:
            raise ServeFailed(f"could not download the model artifacts {url}: {e}") from e
    return model_dir


class ServeProcess:
    """One serve program on 127.0.0.1:<port>, with in-flight request counting for draining."""

    def __init__(self, ctx: Context, workdir: Path, env: dict[str, str], log_group: str, log_stream: str):
        self.ctx = ctx
        self.workdir = workdir
        self.port = free_port()
        self.env = env
        self.log_group, self.log_stream = log_group, log_stream
        self.proc = None
        self.shipper: LogShipper | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=30)
        self._inflight = 0
        self._cond = threading.Condition()

    def start(self) -> None:
        fields = {"model_dir": str(self.workdir / "model"), "port": str(self.port), "host": "127.0.0.1"}
        argv = [a.format(**fields) for a in self.ctx.serve_command]
        env = child_env({**self.env, "S2S_ML_ROOT": str(self.workdir), "SAGEMAKER_BIND_TO_PORT": str(self.port)})
        self.shipper = LogShipper(self.ctx.logs, self.log_group, self.log_stream,
                                  local_file=self.workdir / "serve.log")
        self.proc = start_process(argv, env, cwd=self.workdir)

        def sink(line: str) -> None:
            self.tail.append(line.rstrip("\n"))
            assert self.shipper is not None
            self.shipper.write(line)
        pump_output(self.proc, sink)
        logger.info("started serve program pid %s on port %s: %s", self.proc.pid, self.port, argv)

    def wait_ready(self, cancel: threading.Event | None = None) -> None:
        """Block until ``GET /ping`` answers 200; ServeFailed if the process dies or times out."""
        assert self.proc is not None
        deadline = time.monotonic() + self.ctx.ready_timeout_s
        while True:
            if cancel is not None and cancel.is_set():
                raise ServeFailed("cancelled")
            code = self.proc.poll()
            if code is not None:
                time.sleep(0.2)  # let the pump read the last lines
                raise ServeFailed(f"the serve program exited with status {code} before it answered /ping; "
                                  f"last output: {' | '.join(list(self.tail)[-8:]) or '(none)'}")
            try:
                status, _, _ = self.request("GET", "/ping", b"", {}, timeout=2.0)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServeFailed(f"the serve program did not answer /ping on port {self.port} within "
                                  f"{self.ctx.ready_timeout_s:.0f} s; see the log {self.log_group}/{self.log_stream}")
            time.sleep(0.2)

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str],
                timeout: float = INVOKE_TIMEOUT_S) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def acquire(self) -> None:
        with self._cond:
            self._inflight += 1

    def release(self) -> None:
        with self._cond:
            self._inflight -= 1
            self._cond.notify_all()

    def drain_and_stop(self, timeout: float = INVOKE_TIMEOUT_S) -> None:
        """Wait for in-flight requests to finish (up to ``timeout``), then stop the process."""
        with self._cond:
            self._cond.wait_for(lambda: self._inflight == 0, timeout=timeout)
        self.stop()

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, self.ctx.stop_grace_s)
        if self.shipper is not None:
            self.shipper.close()
            self.shipper = None


class _Backend:
    def __init__(self, proc: ServeProcess, variant: str, config_name: str, workdir: Path):
        self.proc, self.variant, self.config_name, self.workdir = proc, variant, config_name, workdir


class EndpointManager:
    """Runs the serve processes behind endpoints and routes InvokeEndpoint to them."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._lock = threading.Lock()
        self._live: dict[str, _Backend] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def deploy(self, name: str, config_name: str, mode: str) -> None:
        """Bring ``config_name`` up behind endpoint ``name`` in the background.

        ``mode`` is "create" (Failed on error), "update" (roll back to the running process on
        error) or "restore" (after a restart of the stack).
        """
        with self._lock:
            cancel = self._cancel.setdefault(name, threading.Event())
        t = threading.Thread(target=self._deploy, args=(name, config_name, mode, cancel),
                             name=f"endpoint-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    def _start_backend(self, name: str, config_name: str, cancel: threading.Event) -> _Backend:
        reg = self.ctx.registry
        config = reg.get("endpoint-config", config_name)
        if config is None:
            raise ServeFailed(f"the endpoint configuration {config_name!r} no longer exists")
        variant = config["ProductionVariants"][0]
        model = reg.get("model", variant["ModelName"])
        if model is None:
            raise ServeFailed(f"the model {variant['ModelName']!r} of endpoint configuration "
                              f"{config_name!r} no longer exists; create it again or use another configuration")
        generation = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        workdir = self.ctx.root / "endpoints" / name / generation
        fetch_model(self.ctx, model, workdir)
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        proc = ServeProcess(self.ctx, workdir, dict(container.get("Environment") or {}),
                            f"/aws/sagemaker/Endpoints/{name}", f"{variant['VariantName']}/local-{generation}")
        proc.start()
        try:
            proc.wait_ready(cancel)
        except BaseException:
            proc.stop()
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return _Backend(proc, variant["VariantName"], config_name, workdir)

    def _deploy(self, name: str, config_name: str, mode: str, cancel: threading.Event) -> None:
        reg = self.ctx.registry
        try:
            backend = self._start_backend(name, config_name, cancel)
        except Exception as e:
            if cancel.is_set():
                return
            logger.warning("endpoint %s: %s", name, e)
            if mode == "update":
                reg.update("endpoint", name, {"EndpointStatus": "InService", "LastModifiedTime": now(),
                                              "FailureReason": f"Update failed, the endpoint keeps its "
                                                               f"previous configuration: {e}"[:1024]})
            else:
                reg.update("endpoint", name, {"EndpointStatus": "Failed", "LastModifiedTime": now(),
                                              "FailureReason": str(e)[:1024]})
            return
        with self._lock:
            if cancel.is_set() or not reg.exists("endpoint", name):
                old, backend_to_stop = None, backend
            else:
                old, backend_to_stop = self._live.get(name), None
                self._live[name] = backend
                config = reg.get("endpoint-config", config_name) or {"ProductionVariants": []}
                changes: dict[str, Any] = {
                    "EndpointStatus": "InService", "EndpointConfigName": config_name, "FailureReason": None,
                    "ProductionVariants": [_variant_summary(v, reg.get("model", v.get("ModelName", "")))
                                           for v in config["ProductionVariants"]],
                }
                if mode != "restore":  # a restart of the stack is not a change of the endpoint
                    changes["LastModifiedTime"] = now()
                reg.update("endpoint", name, changes)
        if backend_to_stop is not None:
            self._retire(backend_to_stop)
        if old is not None:
            self._retire(old)

    def _retire(self, backend: _Backend) -> None:
        backend.proc.drain_and_stop()
        shutil.rmtree(backend.workdir, ignore_errors=True)

    def delete(self, name: str) -> None:
        """Stop the endpoint's process (in the background) and forget the endpoint."""
        with self._lock:
            cancel = self._cancel.pop(name, None)
            if cancel is not None:
                cancel.set()
            backend = self._live.pop(name, None)

        def run() -> None:
            if backend is not None:
                self._retire(backend)
            shutil.rmtree(self.ctx.root / "endpoints" / name, ignore_errors=True)
            self.ctx.registry.delete("endpoint", name)
        t = threading.Thread(target=run, name=f"delete-{name}", daemon=True)
        self._threads.append(t)
        t.start()

    def stop_all(self) -> None:
        """Stop every serve process (the stack is stopping); records stay as they are."""
        with self._lock:
            for ev in self._cancel.values():
                ev.set()
            backends, self._live = list(self._live.values()), {}
        for b in backends:
            b.proc.stop()
        for t in self._threads:
            t.join(timeout=self.ctx.stop_grace_s + 15)

    # ------------------------------------------------------------------ InvokeEndpoint
    def invoke(self, name: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Forward one request to the endpoint's serve program; ApiError on failure."""
        with self._lock:
            backend = self._live.get(name)
            if backend is not None:
                backend.proc.acquire()
        if backend is None:
            rec = self.ctx.registry.get("endpoint", name)
            if rec is None:
                raise ApiError("ValidationError", f"Endpoint {name} of account {ACCOUNT_ID} not found.")
            raise ApiError("ValidationError", f"Endpoint {name} of account {ACCOUNT_ID} is not ready "
                                              f"(status {rec['EndpointStatus']}); wait for InService.")
        try:
            try:
                status, up_headers, up_body = backend.proc.request("POST", "/invocations", body, headers)
            except OSError as e:
                raise ApiError("ModelError", f"Received server error (0) from {backend.variant} with message "
                                             f"\"the model server did not answer: {e}\".", 424,
                               OriginalStatusCode=500, OriginalMessage=str(e)) from e
        finally:
            backend.proc.release()
        log_arn = (f"arn:aws:logs:{self.ctx.region}:{ACCOUNT_ID}:log-group:{backend.proc.log_group}")
        if status != 200:
            text = up_body.decode("utf-8", "replace")[:2000]
            kind = "client" if 400 <= status < 500 else "server"
            raise ApiError("ModelError", f"Received {kind} error ({status}) from {backend.variant} with message "
                                         f"\"{text}\". See {log_arn} in account {ACCOUNT_ID} for more information.",
                           424, OriginalStatusCode=status, OriginalMessage=text, LogStreamArn=log_arn)
        out = {"Content-Type": up_headers.get("content-type", "application/octet-stream"),
               "x-Amzn-Invoked-Production-Variant": backend.variant}
        if "x-amzn-sagemaker-custom-attributes" in up_headers:
            out["X-Amzn-SageMaker-Custom-Attributes"] = up_headers["x-amzn-sagemaker-custom-attributes"]
        return 200, out, up_body


def _variant_summary(v: dict[str, Any], model: dict[str, Any] | None) -> dict[str, Any]:
    """DescribeEndpoint's ProductionVariantSummary for a running variant (one local process serves it)."""
    count = v.get("InitialInstanceCount", 1)
    weight = v.get("InitialVariantWeight", 1.0)
    container = (model or {}).get("PrimaryContainer") or ((model or {}).get("Containers") or [{}])[0]
    image = container.get("Image") or "local"
    t = now()
    return {"VariantName": v["VariantName"], "CurrentWeight": weight, "DesiredWeight": weight,
            "CurrentInstanceCount": count, "DesiredInstanceCount": count,
            "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": t}]}
