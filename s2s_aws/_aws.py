"""Shared AWS helpers: clients from an injected boto3 session, naming, tags, polling, console URLs.

Every client is made from the caller's ``boto3.Session`` with botocore's *standard* retry mode
(exponential backoff with jitter on throttling and transient errors), so the SDK never reads
credentials on its own and honours ``AWS_ENDPOINT_URL`` (local mode) like any boto3 code.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote

from .errors import AWSOperationError, InputError, S2SError

logger = logging.getLogger(__name__)

#: the tag every resource created by s2s-aws carries: ``s2s-aws:run=<run id>``
RUN_TAG = "s2s-aws:run"
#: botocore retry settings used for every client (``standard`` mode, see botocore's retry docs);
#: kept small so an unreachable endpoint URL fails within about 10 s. ``S2S_MAX_ATTEMPTS`` and
#: ``S2S_CONNECT_TIMEOUT_S`` override them.
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_CONNECT_TIMEOUT_S = 3.0
#: SageMaker resource names: letters, digits and hyphens, at most 63 characters
MAX_NAME_LEN = 63

_NAME_BAD = re.compile(r"[^a-zA-Z0-9-]+")


def _env_number(name: str, default: float, kind: type) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise InputError(f"{name}={raw!r} is not a positive number; unset it or set e.g. {name}={kind(default)}")
    return value


def max_attempts_default() -> int:
    """Retry attempts per AWS call: ``S2S_MAX_ATTEMPTS`` or :data:`DEFAULT_MAX_ATTEMPTS`."""
    return _env_number("S2S_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, int)


def connect_timeout_default() -> float:
    """Connect timeout in seconds: ``S2S_CONNECT_TIMEOUT_S`` or :data:`DEFAULT_CONNECT_TIMEOUT_S`."""
    return _env_number("S2S_CONNECT_TIMEOUT_S", DEFAULT_CONNECT_TIMEOUT_S, float)


def client_config(max_attempts: int | None = None, **kwargs: Any):
    """A ``botocore.config.Config`` with standard-mode retries, a bounded connect timeout and the
    s2s-aws user agent."""
    from botocore.config import Config

    from . import __version__

    kwargs.setdefault("connect_timeout", connect_timeout_default())
    return Config(retries={"mode": "standard", "max_attempts": max_attempts or max_attempts_default()},
                  user_agent_extra=f"s2s-aws/{__version__}", **kwargs)


def make_client(boto_session: Any, service: str, *, max_attempts: int | None = None,
                **config_kwargs: Any) -> Any:
    """Create a client for ``service`` from the injected ``boto_session`` (standard retries)."""
    return boto_session.client(service, config=client_config(max_attempts, **config_kwargs))


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")) or str(exc)


def is_not_found(exc: BaseException) -> bool:
    """True for SageMaker/S3 "does not exist" errors (SageMaker reports them as ValidationException)."""
    code = error_code(exc)
    if code in ("404", "NoSuchKey", "NotFound", "ResourceNotFound", "ResourceNotFoundException",
                "ObjectNotFound", "NoSuchBucket", "ObjectNotFoundException"):
        return True
    msg = error_message(exc).lower()
    return code == "ValidationException" and ("could not find" in msg or "does not exist" in msg
                                              or "not found" in msg)


def sanitize_base(base: str) -> str:
    """Turn any text into a SageMaker-safe name stem (letters, digits, single hyphens)."""
    stem = _NAME_BAD.sub("-", base).strip("-")
    stem = re.sub(r"-{2,}", "-", stem)
    if not stem:
        stem = "s2s"
    if not stem[0].isalnum():
        stem = "s" + stem
    return stem


def unique_name(base: str, *, now: datetime | None = None, max_len: int = MAX_NAME_LEN) -> str:
    """``<base>-YYYYmmdd-HHMMSS-xxxx``: readable, sortable, unique and at most ``max_len`` characters."""
    now = now or datetime.now(timezone.utc)
    suffix = f"-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    stem = sanitize_base(base)[: max_len - len(suffix)].rstrip("-") or "s2s"
    return stem + suffix


_UNIQUE_SUFFIX = re.compile(r"-\d{8}-\d{6}-[0-9a-f]{4}$")


def base_of(name: str) -> str:
    """The stem of a name made by :func:`unique_name` (``seq2seq-20240101-120000-ab12`` -> ``seq2seq``)."""
    return _UNIQUE_SUFFIX.sub("", name) or name


def new_run_id(now: datetime | None = None) -> str:
    """A run id for the ``s2s-aws:run`` tag: ``YYYYmmdd-HHMMSS-xxxxxx``."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def make_tags(run_id: str, extra: Mapping[str, str] | Iterable[Mapping[str, str]] | None = None) -> list[dict[str, str]]:
    """SageMaker ``Tags``: the run tag plus ``extra`` (a mapping or a list of ``{"Key","Value"}``)."""
    tags: dict[str, str] = {RUN_TAG: run_id}
    if extra:
        items = extra.items() if isinstance(extra, Mapping) else ((t["Key"], t["Value"]) for t in extra)
        for key, value in items:
            if key == RUN_TAG:
                continue  # the run tag is ours
            tags[str(key)] = str(value)
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; InputError for anything else."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise InputError(f"not an S3 URI: {uri!r}; expected s3://BUCKET/KEY")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise InputError(f"S3 URI {uri!r} has no bucket; expected s3://BUCKET/KEY")
    return bucket, key


def join_key(*parts: str) -> str:
    """Join S3 key parts with single slashes (empty parts dropped)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


# ---------------------------------------------------------------- console and log URLs
def _console_host(region: str) -> str:
    if region.startswith("cn-"):
        return f"https://{region}.console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return f"https://{region}.console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def console_url(region: str, kind: str, name: str) -> str:
    """SageMaker console page of a resource (``kind``: jobs, endpoints, transform-jobs, models...)."""
    return f"{_console_host(region)}/sagemaker/home?region={region}#/{kind}/{quote(name, safe='')}"


def _cw_escape(text: str) -> str:
    # the CloudWatch console writes a percent-escaped path part with "$25" for "%": / -> $252F
    return quote(text, safe="").replace("%", "$25")


def log_url(region: str, group: str, stream_prefix: str | None = None) -> str:
    """CloudWatch Logs console URL of a log group, filtered to streams starting with ``stream_prefix``."""
    url = f"{_console_host(region)}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{_cw_escape(group)}"
    if stream_prefix:
        url += f"$3FlogStreamNameFilter$3D{_cw_escape(stream_prefix)}"
    return url


# ---------------------------------------------------------------- polling
@dataclass
class Backoff:
    """Polling delays: ``initial`` seconds, multiplied by ``factor`` up to ``maximum``."""

    initial: float = 2.0
    factor: float = 1.5
    maximum: float = 30.0

    def delays(self) -> Iterable[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(self.maximum, delay * self.factor)


@dataclass
class Clock:
    """Time source for waits (tests replace ``sleep``/``monotonic``)."""

    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


def wait_for(describe: Callable[[], dict], status_of: Callable[[dict], str], terminal: Iterable[str], *,
             timeout: float | None, backoff: Backoff | None = None, clock: Clock | None = None,
             on_poll: Callable[[dict], None] | None = None,
             on_timeout: Callable[[dict, float], Exception] | None = None) -> dict:
    """Poll ``describe()`` with backoff until ``status_of(desc)`` is terminal; return the last description.

    ``on_poll`` runs after every describe (progress, logs). When ``timeout`` seconds pass first,
    the exception from ``on_timeout(desc, elapsed)`` is raised (a generic WaitTimeout otherwise).
    """
    from .errors import WaitTimeout

    backoff = backoff or Backoff()
    clock = clock or Clock()
    terminal = set(terminal)
    start = clock.monotonic()
    delays = iter(backoff.delays())
    while True:
        desc = describe()
        if on_poll is not None:
            on_poll(desc)
        status = status_of(desc)
        if status in terminal:
            return desc
        elapsed = clock.monotonic() - start
        if timeout is not None and elapsed >= timeout:
            if on_timeout is not None:
                raise on_timeout(desc, elapsed)
            raise WaitTimeout(f"still {status} after {elapsed:.0f}s; the resource keeps going on AWS")
        delay = next(delays)
        if timeout is not None:
            delay = max(0.0, min(delay, timeout - elapsed))
        clock.sleep(delay)


def aws_error(action: str, exc: BaseException, hint: str = "") -> S2SError:
    """Wrap a botocore error into an AWSOperationError that says what failed and what to do next
    (an InputError, exit 2, for configuration errors: credentials, parameters, unreachable URL)."""
    config = _configuration_error(exc, action)
    if config is not None:
        return config
    code = error_code(exc)
    what = f"{action} failed"
    if code:
        what += f" ({code})"
    msg = f"{what}: {error_message(exc)}"
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        msg += "; check that your credentials/role allow this action"
    if hint:
        msg += f"; {hint}"
    return AWSOperationError(msg)


def map_botocore_error(exc: BaseException, action: str) -> S2SError:
    """The S2SError a botocore error means, in the CLI's terms (exit 2 for configuration/input)."""
    return aws_error(action, exc)


def _configuration_error(exc: BaseException, action: str) -> InputError | None:
    try:
        import botocore.exceptions as bx
    except ImportError:  # pragma: no cover
        return None

    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return InputError("no AWS credentials: run `aws configure`, set AWS_PROFILE, "
                          "or use local mode (`s2s-aws local up`)")
    if isinstance(exc, bx.ParamValidationError):
        detail = " ".join(str(exc).split())
        return InputError(f"{action}: invalid request parameter: {detail}; check the flags you passed")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "") or "the AWS endpoint"
        return InputError(f"{action}: could not connect to {url}; check AWS_ENDPOINT_URL and --region, "
                          "or start local mode (`s2s-aws local up`)")
    if isinstance(exc, bx.NoRegionError):
        return InputError("no AWS region; pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    return None
