"""``LocalStack``: moto plus the local SageMaker control plane on one 127.0.0.1 port."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence
from unittest import mock

from ..errors import InputError
from .state import (
    Registry, restore_iam, restore_logs, restore_s3, restore_timestamps, snapshot_iam, snapshot_logs, snapshot_s3,
)
from .support import ACCOUNT_ID, Context

logger = logging.getLogger(__name__)

FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"

#: the execution role every local stack has (it trusts sagemaker.amazonaws.com; nothing is enforced locally)
ROLE_NAME = "S2SLocalSageMakerExecutionRole"
_TRUST_SAGEMAKER = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}

#: what to tell users of the SageMaker Python SDK (v2 and v3): both build their STS client with an
#: explicit https://sts.REGION.amazonaws.com endpoint, which beats AWS_ENDPOINT_URL and
#: AWS_ENDPOINT_URL_STS, so Session.default_bucket() and get_execution_role() never reach the stack.
STS_WORKAROUND = ("SageMaker Python SDK: its STS calls ignore AWS_ENDPOINT_URL(_STS), so pass the bucket and role: "
                  "sagemaker.Session(default_bucket=os.environ['S2S_BUCKET']) and role=os.environ['S2S_ROLE_ARN'] "
                  "(not get_execution_role()).")


def default_train_command() -> list[str]:
    """``$S2S_LOCAL_TRAIN_COMMAND`` (shell words) or ``python -m s2s_algorithm.train``."""
    env = os.environ.get("S2S_LOCAL_TRAIN_COMMAND")
    return shlex.split(env) if env else [sys.executable, "-m", "s2s_algorithm.train"]


def default_serve_command() -> list[str]:
    """``$S2S_LOCAL_SERVE_COMMAND`` or ``python -m s2s_algorithm.serve --host 127.0.0.1 --model-dir
    {model_dir} --port {port}`` (endpoints listen on the loopback interface only)."""
    env = os.environ.get("S2S_LOCAL_SERVE_COMMAND")
    if env:
        return shlex.split(env)
    return [sys.executable, "-m", "s2s_algorithm.serve", "--host", "127.0.0.1", "--model-dir", "{model_dir}",
            "--port", "{port}"]


class LocalStack:
    """An embedded AWS on 127.0.0.1: moto (S3, IAM, CloudWatch Logs, STS, ...) and a SageMaker
    control plane that really runs training jobs, endpoints and transform jobs as child processes.

    Example::

        with LocalStack("~/.s2s-local") as stack, stack.activated():
            sm = boto3.client("sagemaker")        # talks to the local stack
            ...

    ``train_command`` is the argv of the training program (run with ``S2S_ML_ROOT`` set);
    ``serve_command`` the argv of the inference server, where ``{model_dir}``, ``{port}`` and ``{host}``
    (127.0.0.1: endpoints must listen on the loopback interface only) are filled in (it also gets ``SAGEMAKER_BIND_TO_PORT``). ``echo`` receives every training log line.
    State (resources, S3 objects, log events) lives in ``state_dir`` and survives a restart.
    """

    def __init__(self, state_dir: str | os.PathLike, *, region: str = "us-east-1", port: int = 0,
                 train_command: Sequence[str] | None = None, serve_command: Sequence[str] | None = None,
                 stop_grace_s: float = 10.0, ready_timeout_s: float = 300.0,
                 echo: Callable[[str], None] | None = None, start: bool = True):
        self.state_dir = Path(state_dir).expanduser().resolve()
        self.region = region
        self._port = port
        self._train_command = list(train_command) if train_command else default_train_command()
        self._serve_command = list(serve_command) if serve_command else default_serve_command()
        self._stop_grace_s = stop_grace_s
        self._ready_timeout_s = ready_timeout_s
        self._echo = echo
        self._server: Any = None
        self._save_lock = threading.Lock()
        self._logs_dirty = threading.Event()
        self._stopping = threading.Event()
        self._autosave: threading.Thread | None = None
        self.logs_save_interval_s = 1.0
        self._thread: threading.Thread | None = None
        self._lock_file: Any = None
        self._iam: Any = None
        self.control_plane: Any = None
        self.ctx: Context | None = None
        if start:
            self.start()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "LocalStack":
        """Start the server, restore the saved state, and resume endpoints."""
        if self._server is not None:
            return self
        try:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise InputError("local mode needs moto's server: pip install 's2s-aws[local]'") from e
        from werkzeug.serving import make_server
        import boto3

        self._open_state_dir()
        try:
            self._start(MotoRequestHandler, DomainDispatcherApplication, create_backend_app, make_server, boto3)
        except BaseException:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None
            self._release_state_dir()
            raise
        return self

    def _open_state_dir(self) -> None:
        """Create the state folder and lock it: one stack per folder (a second one is refused at once)."""
        if self.state_dir.exists() and not self.state_dir.is_dir():
            raise InputError(f"the state folder {self.state_dir} is a file, not a folder; pass --state-dir a "
                             "folder (it is created when missing)")
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            lock = open(self.state_dir / "lock", "a+", encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot use {self.state_dir} as the state folder: {e}; pass another --state-dir") from e
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock on this platform: no lock
            self._lock_file = lock
            return
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            owner = lock.read().strip() or "unknown"
            lock.close()
            raise InputError(f"the state folder {self.state_dir} is in use by another local stack (pid {owner}); "
                             "stop that one first (Ctrl-C where it runs) or pass another --state-dir") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock_file = lock

    def _release_state_dir(self) -> None:
        lock, self._lock_file = self._lock_file, None
        if lock is not None:
            lock.close()  # closing the file releases the flock

    def _start(self, MotoRequestHandler: Any, DomainDispatcherApplication: Any, create_backend_app: Any,
               make_server: Any, boto3: Any) -> None:
        from .controlplane import ControlPlane
        from .server import FrontApp, PersistingApp

        class _QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

            def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002
                logger.debug("http: " + message, *args)

        registry = Registry(self.state_dir)
        moto_app = PersistingApp(DomainDispatcherApplication(create_backend_app), self._save_s3, self._logs_dirty.set,
                                 self._save_iam)
        front = FrontApp(None, moto_app)  # type: ignore[arg-type]
        try:
            server = make_server("127.0.0.1", self._port, front, threaded=True, request_handler=_QuietHandler)
        except OSError as e:
            raise InputError(f"cannot listen on 127.0.0.1:{self._port}: {e}; pick another --port or stop "
                             "the program that uses it") from e
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="local-stack-http", daemon=True)
        self._thread.start()
        session = boto3.session.Session(aws_access_key_id=FAKE_ACCESS_KEY, aws_secret_access_key=FAKE_SECRET_KEY,
                                        region_name=self.region)
        s3 = session.client("s3", endpoint_url=self.endpoint_url)
        logs = session.client("logs", endpoint_url=self.endpoint_url)
        cloudwatch = session.client("cloudwatch", endpoint_url=self.endpoint_url)
        self.ctx = Context(registry=registry, root=self.state_dir, region=self.region, s3=s3, logs=logs,
                           cloudwatch=cloudwatch,
                           train_command=self._train_command, serve_command=self._serve_command,
                           stop_grace_s=self._stop_grace_s, ready_timeout_s=self._ready_timeout_s, echo=self._echo)
        self.control_plane = ControlPlane(self.ctx)
        front.cp = self.control_plane
        n_obj = restore_s3(s3, self.state_dir)
        n_ev = restore_logs(logs, self.state_dir)
        restore_timestamps(self.state_dir, self.region, ACCOUNT_ID)
        self._iam = session.client("iam", endpoint_url=self.endpoint_url)
        restore_iam(self._iam, self.state_dir, ACCOUNT_ID)
        moto_app.enabled = True  # from here on, S3 and IAM writes are saved before they are acknowledged
        self._ensure_bucket_and_role(session)
        self._logs_dirty.clear()
        self._stopping.clear()
        self._autosave = threading.Thread(target=self._autosave_logs, name="local-stack-logs-save", daemon=True)
        self._autosave.start()
        registry.load()
        self.control_plane.restore()
        logger.info("local stack on %s (state %s; restored %d S3 objects, %d log events)",
                    self.endpoint_url, self.state_dir, n_obj, n_ev)

    def _ensure_bucket_and_role(self, session: Any) -> None:
        """The bucket the SageMaker SDKs' ``default_bucket()`` would name and an execution role that
        trusts SageMaker (IAM is not saved in the state folder, so the role is made at every start)."""
        s3 = session.client("s3", endpoint_url=self.endpoint_url)
        try:
            if self.region == "us-east-1":
                s3.create_bucket(Bucket=self.bucket)
            else:
                s3.create_bucket(Bucket=self.bucket,
                                 CreateBucketConfiguration={"LocationConstraint": self.region})
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            pass
        iam = session.client("iam", endpoint_url=self.endpoint_url)
        try:
            iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(_TRUST_SAGEMAKER),
                            Description="Execution role of the s2s-aws local stack (nothing is enforced locally)")
            iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="local-allow-all", PolicyDocument=json.dumps(_ALLOW_ALL))
        except iam.exceptions.EntityAlreadyExistsException:
            pass

    @property
    def bucket(self) -> str:
        """``sagemaker-{region}-{account}``: what the SageMaker SDKs' ``Session.default_bucket()`` names."""
        return f"sagemaker-{self.region}-{ACCOUNT_ID}"

    @property
    def role_arn(self) -> str:
        """The local execution role (it exists in the local IAM and trusts sagemaker.amazonaws.com)."""
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLE_NAME}"

    def stop(self) -> None:
        """Stop every child process, save S3 and CloudWatch Logs to the state folder, stop the server."""
        if self._server is None:
            return
        assert self.ctx is not None
        try:
            self.control_plane.shutdown()
            self._stopping.set()
            if self._autosave is not None:
                self._autosave.join(timeout=30)
            self._save_s3()
            with self._save_lock:
                snapshot_logs(self.ctx.logs, self.state_dir)
        finally:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
            self._release_state_dir()

    # ------------------------------------------------------------------ durability
    def _save_iam(self) -> None:
        """Write IAM's roles and policies to the state folder (called before an IAM change is acknowledged)."""
        if self._iam is None:
            return
        with self._save_lock:
            snapshot_iam(self._iam, self.state_dir)

    def _save_s3(self) -> None:
        """Write S3 to the state folder (called before an S3 write is acknowledged)."""
        if self.ctx is None:
            return
        with self._save_lock:
            snapshot_s3(self.ctx.s3, self.state_dir)

    def _autosave_logs(self) -> None:
        """Save CloudWatch Logs to the state folder about once a second while they change."""
        while not self._stopping.wait(self.logs_save_interval_s):
            if self._logs_dirty.is_set() and self.ctx is not None:
                self._logs_dirty.clear()
                try:
                    with self._save_lock:
                        snapshot_logs(self.ctx.logs, self.state_dir)
                except Exception:  # never let a failed save kill the thread; the next one retries
                    logger.warning("saving CloudWatch Logs to %s failed; will retry", self.state_dir, exc_info=True)
                    self._logs_dirty.set()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ pointing clients at it
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the local stack is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        """The one URL every AWS client should use (``http://127.0.0.1:<port>``)."""
        return f"http://127.0.0.1:{self.port}"

    def environ(self) -> dict[str, str]:
        """The environment variables that point boto3 (and the AWS CLI) at this stack."""
        url = self.endpoint_url
        return {
            "AWS_ENDPOINT_URL": url,
            "AWS_ENDPOINT_URL_SAGEMAKER": url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": url,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "S2S_BUCKET": self.bucket,
            "S2S_ROLE_ARN": self.role_arn,
        }

    @contextlib.contextmanager
    def activated(self) -> Iterator["LocalStack"]:
        """Set :meth:`environ` in ``os.environ`` (dropping AWS_PROFILE/AWS_SESSION_TOKEN) for the block;
        the environment is restored as a whole afterwards."""
        with mock.patch.dict(os.environ):   # puts os.environ back as it was when the block ends
            os.environ.pop("AWS_PROFILE", None)
            os.environ.pop("AWS_SESSION_TOKEN", None)
            os.environ.update(self.environ())
            yield self

    def boto_session(self) -> Any:
        """A ``boto3.Session`` with the fake credentials and region (use with :meth:`activated` or
        pass ``endpoint_url=stack.endpoint_url`` to its clients)."""
        import boto3
        return boto3.session.Session(aws_access_key_id=FAKE_ACCESS_KEY, aws_secret_access_key=FAKE_SECRET_KEY,
                                     region_name=self.region)

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` pointed at this stack."""
        return self.boto_session().client(service, endpoint_url=self.endpoint_url)
