"""Shared helpers of the local stack: ARNs, S3 transfers, child processes and log shipping."""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"


class ApiError(Exception):
    """An error answer of the local SageMaker API (``code`` is the AWS error code)."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


def arn(region: str, kind: str, name: str) -> str:
    """``arn:aws:sagemaker:<region>:123456789012:<kind>/<name>`` (SageMaker lower-cases names in ARNs)."""
    return f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:{kind}/{name.lower()}"


def now() -> float:
    return round(time.time(), 3)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; ValueError when it is not an S3 URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an S3 URI (expected s3://bucket/prefix)")
    return parsed.netloc, parsed.path.lstrip("/")


def download_prefix(s3: Any, uri: str, dest: Path) -> list[Path]:
    """Download every object under an S3 prefix into ``dest``, keeping paths below the prefix.

    A prefix without a trailing slash is treated as a folder when the objects lie below
    ``prefix/`` (``s3://b/p/train`` with ``p/train/train.rec`` gives ``dest/train.rec``); a prefix
    that names one object gives that object's base name. Raises FileNotFoundError when nothing matches.
    """
    bucket, prefix = parse_s3_uri(uri)
    dest.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    base = prefix[: prefix.rfind("/") + 1]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue
            if key == prefix:
                rel = key.rsplit("/", 1)[-1]
            elif prefix and not prefix.endswith("/") and key.startswith(prefix + "/"):
                rel = key[len(prefix) + 1:]
            else:
                rel = key[len(base):]
            target = (dest / rel).resolve()
            if dest.resolve() not in target.parents:
                raise ValueError(f"S3 key {key!r} would be written outside {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            files.append(target)
    if not files:
        raise FileNotFoundError(f"No S3 objects found under S3 URL \"{uri}\"")
    return files


def upload_file(s3: Any, path: Path, uri: str) -> None:
    bucket, key = parse_s3_uri(uri)
    s3.upload_file(str(path), bucket, key)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a train/serve child: ours, unbuffered, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class _BufferedSender:
    """Buffers items and hands them to :meth:`_send_batch` about once a second from a daemon thread
    (and on :meth:`flush` / :meth:`_stop`)."""

    def __init__(self, thread_name: str) -> None:
        self._buf: list[Any] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=thread_name, daemon=True)

    def _loop(self) -> None:
        while not self._closed.wait(1.0):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._buf = self._buf, []
        if batch:
            self._send_batch(batch)

    def _send_batch(self, batch: list[Any]) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()


class LogShipper(_BufferedSender):
    """Buffers lines and sends them to one CloudWatch Logs stream (and a local file) about once a second."""

    def __init__(self, logs: Any, group: str, stream: str, local_file: Path | None = None,
                 echo: Callable[[str], None] | None = None):
        super().__init__(f"logs-{stream}")
        self.logs, self.group, self.stream = logs, group, stream
        self.local_file = local_file
        self.echo = echo
        try:
            logs.create_log_group(logGroupName=group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        if local_file is not None:
            Path(local_file).parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(local_file, "a", encoding="utf-8") if local_file else None
        self._thread.start()

    def write(self, line: str) -> None:
        line = line.rstrip("\n")
        with self._lock:
            self._buf.append({"timestamp": int(time.time() * 1000), "message": line or " "})
            if self._fh:
                self._fh.write(line + "\n")
                self._fh.flush()
        if self.echo:
            self.echo(line)

    def _send_batch(self, batch: list[dict]) -> None:
        for i in range(0, len(batch), 1000):
            try:
                self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream,
                                         logEvents=batch[i:i + 1000])
            except Exception as e:  # the stack may be shutting down; the local file keeps the lines
                logger.debug("could not ship %d log lines to %s/%s: %s", len(batch), self.group, self.stream, e)

    def close(self) -> None:
        self._stop()
        if self._fh:
            self._fh.close()


class MetricPublisher(_BufferedSender):
    """Publishes a training job's metric values to CloudWatch as SageMaker does: namespace
    ``/aws/sagemaker/TrainingJobs``, once with dimension ``TrainingJobName`` (what the SageMaker Python
    SDK's ``TrainingJobAnalytics`` queries) and once with ``Host`` = ``<job>/algo-1``. Values are
    buffered and sent about once a second (and on close)."""

    NAMESPACE = "/aws/sagemaker/TrainingJobs"

    def __init__(self, cloudwatch: Any, job_name: str, host: str = "algo-1", local_file: Path | None = None,
                 start: bool = True):
        super().__init__(f"metrics-{job_name}")
        self.cloudwatch = cloudwatch
        self.dimensions = ([{"Name": "TrainingJobName", "Value": job_name}],
                           [{"Name": "Host", "Value": f"{job_name}/{host}"}])
        self.local_file = local_file  # one JSON line per value, so a restarted stack can publish them again
        if start:
            self._thread.start()

    @classmethod
    def republish(cls, cloudwatch: Any, job_name: str, local_file: Path) -> int:
        """Publish the values saved in ``local_file`` again (CloudWatch is not saved in the state folder)."""
        pub = cls(cloudwatch, job_name, start=False)
        count = 0
        try:
            lines = Path(local_file).read_text("utf-8").splitlines()
        except OSError:
            return 0
        for line in lines:
            try:
                name, value, ts = json.loads(line)
            except (ValueError, TypeError):
                continue  # a line cut short by a crash
            pub._buf.append((str(name), float(value), float(ts)))
            count += 1
        pub._send(pub._buf)
        return count

    def put(self, name: str, value: float, timestamp: float) -> None:
        if value != value or value in (float("inf"), float("-inf")):  # CloudWatch refuses NaN and infinities
            return
        with self._lock:
            self._buf.append((name, value, timestamp))

    def _send_batch(self, batch: list[tuple[str, float, float]]) -> None:
        if self.local_file is not None:
            try:
                with open(self.local_file, "a", encoding="utf-8") as f:
                    f.writelines(json.dumps([n, v, t]) + "\n" for n, v, t in batch)
            except OSError as e:
                logger.debug("could not save %d metric values to %s: %s", len(batch), self.local_file, e)
        self._send(batch)

    def _send(self, batch: list[tuple[str, float, float]]) -> None:
        if not batch or self.cloudwatch is None:
            return
        import datetime
        data = [{"MetricName": name, "Value": value, "Dimensions": dims, "Unit": "None",
                 "Timestamp": datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)}
                for name, value, ts in batch for dims in self.dimensions]
        for i in range(0, len(data), 500):
            try:
                self.cloudwatch.put_metric_data(Namespace=self.NAMESPACE, MetricData=data[i:i + 500])
            except Exception as e:  # metrics are best effort, as on SageMaker; the log keeps the lines
                logger.debug("could not publish %d metric values to CloudWatch: %s", len(data[i:i + 500]), e)

    def close(self) -> None:
        self._stop()


def start_process(argv: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    """Start a child in its own process group, stdout and stderr merged into one text pipe.

    The program runs under :mod:`s2s_aws.local.child`, which stops the group when this process
    disappears (even by SIGKILL), so no train/serve program outlives the stack that started it.
    """
    from .child import wrap_argv

    return subprocess.Popen(wrap_argv(argv), env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
                            bufsize=1, start_new_session=True)


def terminate(proc: subprocess.Popen, grace_s: float) -> int | None:
    """SIGTERM the child's process group, then SIGKILL it after ``grace_s``; returns the exit status."""
    if proc.poll() is not None:
        return proc.returncode
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


def pump_output(proc: subprocess.Popen, sink: Callable[[str], None]) -> threading.Thread:
    """Read the child's output line by line into ``sink`` on a daemon thread."""
    def run() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sink(line)
    t = threading.Thread(target=run, name=f"pump-{proc.pid}", daemon=True)
    t.start()
    return t


class Context:
    """What the runners share: the registry, AWS clients against the local stack, and settings."""

    def __init__(self, *, registry: Any, root: Path, region: str, s3: Any, logs: Any,
                 train_command: Sequence[str], serve_command: Sequence[str],
                 stop_grace_s: float, ready_timeout_s: float,
                 echo: Callable[[str], None] | None = None, cloudwatch: Any = None):
        self.registry = registry
        self.cloudwatch = cloudwatch
        self.root = Path(root)
        self.region = region
        self.s3 = s3
        self.logs = logs
        self.train_command = list(train_command)
        self.serve_command = list(serve_command)
        self.stop_grace_s = stop_grace_s
        self.ready_timeout_s = ready_timeout_s
        self.echo = echo
