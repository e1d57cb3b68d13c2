"""Training jobs: build the ``CreateTrainingJob`` request, start, wait (with logs), stop, attach.

Example::

    job = sess.train(channels, hyperparameters={"rnn_num_hidden": 512}, instance_type="ml.g5.xlarge",
                     spot=True, max_wait_s=4 * 3600)
    try:
        job.wait(timeout=3 * 3600, logs=True)
    except s2s_aws.TrainingJobFailed as e:
        print(e.reason, e.log_url)
    print(job.metrics())        # {"validation:bleu": 23.4, ...}

The request is a pure function of its inputs (:func:`build_training_request`), so it can be
reviewed and tested without AWS.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TextIO

from ._aws import aws_error, base_of, error_code, is_not_found, log_url, make_tags, unique_name
from ._resource import Resource
from .errors import InputError, TrainingJobFailed, WaitTimeout

if TYPE_CHECKING:
    from .hosting import Endpoint
    from .session import Session
    from .transform import TransformJob

logger = logging.getLogger(__name__)

__all__ = ["TrainingConfig", "TrainingJob", "build_training_request", "start_training", "LogTailer",
           "log_printer", "LOG_GROUP", "TERMINAL_STATUSES"]

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
DEFAULT_BASE_NAME = "seq2seq"


@dataclass
class TrainingConfig:
    """Everything about a training job except its data, hyperparameters and image.

    ``spot`` turns on managed spot training; then ``max_wait_s`` (>= ``max_runtime_s``, default
    twice it) bounds waiting for capacity and checkpoints go to ``checkpoint_s3_uri`` (default
    ``s3://BUCKET/PREFIX/checkpoints/<job name>/``) so an interrupted job resumes.
    """

    instance_type: str = "ml.g5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 50
    max_runtime_s: int = 24 * 3600
    spot: bool = False
    max_wait_s: int | None = None
    checkpoint_s3_uri: str | None = None
    output_path: str | None = None
    subnets: Sequence[str] = ()
    security_group_ids: Sequence[str] = ()
    network_isolation: bool = False
    inter_container_encryption: bool = False
    volume_kms_key: str | None = None
    output_kms_key: str | None = None
    environment: Mapping[str, str] | None = None
    tags: Mapping[str, str] | None = None
    base_job_name: str = DEFAULT_BASE_NAME
    metric_definitions: bool = True

    def validate(self) -> None:
        if not isinstance(self.instance_type, str) or not self.instance_type.startswith("ml."):
            raise InputError(f"instance_type {self.instance_type!r} is not a SageMaker instance type; "
                             "use e.g. ml.g5.xlarge (GPU) or ml.m5.xlarge (CPU)")
        if int(self.instance_count) < 1:
            raise InputError(f"instance_count must be >= 1, got {self.instance_count}")
        if int(self.volume_size_gb) < 1:
            raise InputError(f"volume_size_gb must be >= 1, got {self.volume_size_gb}")
        if int(self.max_runtime_s) < 1:
            raise InputError(f"max_runtime_s must be >= 1, got {self.max_runtime_s}")
        if self.max_wait_s is not None and not self.spot:
            raise InputError("max_wait_s only applies to managed spot training; pass spot=True or drop max_wait_s")
        if self.spot and self.max_wait_s is not None and self.max_wait_s < self.max_runtime_s:
            raise InputError(f"max_wait_s ({self.max_wait_s}) must be >= max_runtime_s ({self.max_runtime_s}) "
                             "for managed spot training")
        if bool(self.subnets) != bool(self.security_group_ids):
            raise InputError("a VPC config needs both subnets and security_group_ids")


def _channel_uris(channels: Any) -> dict[str, str]:
    if hasattr(channels, "as_dict"):
        uris = dict(channels.as_dict())
    elif isinstance(channels, Mapping):
        uris = {str(k): str(v) for k, v in channels.items()}
    else:
        raise InputError(f"channels must be a Channels object or a mapping of name -> S3 URI, got {type(channels).__name__}")
    from .contract.layout import CHANNELS

    missing = [c for c in CHANNELS if c not in uris]
    if missing:
        raise InputError(f"channels lack {', '.join(missing)}; all of train, validation and vocab are required")
    for name, uri in uris.items():
        if not uri.startswith("s3://"):
            raise InputError(f"channel {name!r} must be an s3:// URI, got {uri!r}; upload it first "
                             "(sess.upload_channels or `s2s-aws upload`)")
    return uris


def validate_hyperparameters(hyperparameters: Mapping[str, Any] | None) -> dict[str, str]:
    """Check hyperparameters client-side with the shared schema; return SageMaker's string form."""
    from .contract.hyperparameters import Hyperparameters

    return dict(Hyperparameters.from_dict(dict(hyperparameters or {})).to_strings())


def build_training_request(job_name: str, *, image_uri: str, role_arn: str, channels: Any,
                           hyperparameters: Mapping[str, str], output_path: str,
                           config: TrainingConfig, run_id: str,
                           checkpoint_s3_uri: str | None = None) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request (plain dict) for already validated string hyperparameters."""
    from .contract.layout import RECORDIO_CONTENT_TYPE as CONTENT_TYPE
    from .contract.metrics import METRIC_DEFINITIONS

    config.validate()
    uris = _channel_uris(channels)
    algorithm: dict[str, Any] = {"TrainingImage": image_uri, "TrainingInputMode": "File"}
    if config.metric_definitions:
        algorithm["MetricDefinitions"] = [dict(m) for m in METRIC_DEFINITIONS]
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": algorithm,
        "RoleArn": role_arn,
        "HyperParameters": dict(hyperparameters),
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                                "S3DataDistributionType": "FullyReplicated"}},
                "ContentType": CONTENT_TYPE,
                "CompressionType": "None",
                "InputMode": "File",
            }
            for name, uri in uris.items()
        ],
        "OutputDataConfig": {"S3OutputPath": output_path},
        "ResourceConfig": {"InstanceType": config.instance_type, "InstanceCount": int(config.instance_count),
                           "VolumeSizeInGB": int(config.volume_size_gb)},
        "StoppingCondition": {"MaxRuntimeInSeconds": int(config.max_runtime_s)},
        "EnableNetworkIsolation": bool(config.network_isolation),
        "EnableInterContainerTrafficEncryption": bool(config.inter_container_encryption),
        "EnableManagedSpotTraining": bool(config.spot),
        "Tags": make_tags(run_id, config.tags),
    }
    if config.output_kms_key:
        request["OutputDataConfig"]["KmsKeyId"] = config.output_kms_key
    if config.volume_kms_key:
        request["ResourceConfig"]["VolumeKmsKeyId"] = config.volume_kms_key
    if config.spot:
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = int(config.max_wait_s or 2 * config.max_runtime_s)
    if checkpoint_s3_uri:
        request["CheckpointConfig"] = {"S3Uri": checkpoint_s3_uri, "LocalPath": CHECKPOINT_LOCAL_PATH}
    if config.subnets:
        request["VpcConfig"] = {"SecurityGroupIds": list(config.security_group_ids), "Subnets": list(config.subnets)}
    if config.environment:
        request["Environment"] = {str(k): str(v) for k, v in config.environment.items()}
    return request


def start_training(session: Session, channels: Any = None, hyperparameters: Mapping[str, Any] | None = None, *,
                   image_uri: str | None = None, builtin: bool = False, job_name: str | None = None,
                   config: TrainingConfig | None = None, **config_kwargs: Any) -> "TrainingJob":
    """Validate everything client-side, then call ``CreateTrainingJob``; returns a :class:`TrainingJob`.

    ``config_kwargs`` are :class:`TrainingConfig` fields (``instance_type``, ``spot``,
    ``max_wait_s``, ``subnets``, ``volume_kms_key``, ``tags``...). ``builtin=True`` runs the AWS
    built-in seq2seq image (its own metric definitions are used).
    """
    if config is None:
        config = TrainingConfig(**config_kwargs)
    elif config_kwargs:
        raise InputError("pass either config= or TrainingConfig fields as keywords, not both")
    if builtin:  # the built-in image publishes its own metrics
        config = dataclasses.replace(config, metric_definitions=False)
    config.validate()
    if channels is None:
        channels = session.channels()
    hp_strings = validate_hyperparameters(hyperparameters)
    role = session.require_role()
    image = session.resolve_image(image_uri, builtin=builtin)
    name = job_name or unique_name(config.base_job_name)
    if len(name) > 63:
        raise InputError(f"training job name {name!r} is longer than 63 characters")
    output_path = config.output_path or session.s3_uri("output") + "/"
    checkpoint = config.checkpoint_s3_uri
    if checkpoint is None and config.spot:
        checkpoint = session.s3_uri("checkpoints", name) + "/"
    request = build_training_request(name, image_uri=image, role_arn=role, channels=channels,
                                     hyperparameters=hp_strings, output_path=output_path, config=config,
                                     run_id=session.run_id, checkpoint_s3_uri=checkpoint)
    logger.info("creating training job %s (%s x%d)", name, config.instance_type, config.instance_count)
    try:
        session.sagemaker.create_training_job(**request)
    except Exception as e:
        if error_code(e) == "ResourceInUse":
            raise InputError(f"a training job named {name!r} already exists; pick another job_name "
                             "or re-attach with sess.attach(name)") from e
        raise aws_error(f"creating training job {name}", e,
                        "check the role ARN, the image URI and the instance type quota in this region") from e
    return TrainingJob(session, name)


class LogTailer:
    """Follow every CloudWatch stream of a training job (``<job>/algo-N-...``) from the start."""

    def __init__(self, logs_client: Any, job_name: str, group: str = LOG_GROUP):
        self.logs = logs_client
        self.group = group
        self.prefix = f"{job_name}/"
        self._tokens: dict[str, str | None] = {}

    def _streams(self) -> list[str]:
        pages = self.logs.get_paginator("describe_log_streams").paginate(logGroupName=self.group,
                                                                          logStreamNamePrefix=self.prefix)
        try:
            return sorted(s["logStreamName"] for page in pages for s in page.get("logStreams", []))
        except Exception as e:
            if is_not_found(e):
                return []  # the job has not logged yet
            raise

    def poll(self) -> list[tuple[str, str]]:
        """New ``(stream, message)`` lines since the last call, stream by stream."""
        out: list[tuple[str, str]] = []
        for stream in self._streams():
            token = self._tokens.get(stream)
            while True:
                kwargs: dict[str, Any] = {"logGroupName": self.group, "logStreamName": stream,
                                          "startFromHead": True}
                if token:
                    kwargs["nextToken"] = token
                try:
                    resp = self.logs.get_log_events(**kwargs)
                except Exception as e:
                    if is_not_found(e):
                        break
                    raise
                events = resp.get("events", [])
                out += [(stream, ev.get("message", "").rstrip("\n")) for ev in events]
                new_token = resp.get("nextForwardToken")
                if not events or not new_token or new_token == token:
                    token = new_token or token
                    break
                token = new_token
            self._tokens[stream] = token
        return out


def log_printer(stream: TextIO | None = None) -> Callable[[str, str], None]:
    """A ``log_sink`` for :meth:`TrainingJob.wait` printing ``[algo-1] line`` to ``stream`` (default: stdout)."""
    def sink(log_stream: str, message: str) -> None:
        host = log_stream.split("/", 1)[-1].rsplit("-", 1)[0] if "/" in log_stream else log_stream
        print(f"[{host}] {message}", file=stream or sys.stdout, flush=True)
    return sink


class TrainingJob(Resource):
    """A SageMaker training job (started here or attached by name)."""

    kind = "training job"
    describe_method = "describe_training_job"
    name_parameter = "TrainingJobName"
    status_field = "TrainingJobStatus"
    terminal_statuses = TERMINAL_STATUSES
    console_kind = "jobs"
    not_found_hint = "; check the name and the region (--region / AWS_REGION)"

    @property
    def log_url(self) -> str:
        return log_url(self.session.region, LOG_GROUP, self.name + "/")

    def _progress_text(self, desc: dict[str, Any]) -> str:
        return f"{desc['TrainingJobStatus']} - {desc.get('SecondaryStatus', '')}".rstrip(" -")

    def _timeout_error(self, desc: dict[str, Any], elapsed: float) -> WaitTimeout:
        return WaitTimeout(
            f"training job {self.name} is still {desc['TrainingJobStatus']} after {elapsed:.0f}s; it keeps "
            f"running on SageMaker. Re-attach with `s2s-aws status {self.name} --wait` or "
            f"sess.attach({self.name!r}).wait(); stop it with `s2s-aws stop {self.name}` or job.stop()")

    @property
    def model_artifacts(self) -> str:
        """S3 URI of ``model.tar.gz`` (the job must be Completed)."""
        desc = self.describe()
        uri = desc.get("ModelArtifacts", {}).get("S3ModelArtifacts")
        if desc["TrainingJobStatus"] != "Completed" or not uri:
            raise InputError(f"training job {self.name} is {desc['TrainingJobStatus']}, it has no model yet; "
                             f"wait for it (`s2s-aws status {self.name} --wait`)")
        return uri

    @property
    def image_uri(self) -> str:
        return self.last_description["AlgorithmSpecification"]["TrainingImage"]

    @property
    def vocab_uri(self) -> str | None:
        """S3 URI of the job's vocab channel (for RecordIO-protobuf translation)."""
        from .contract.layout import VOCAB_CHANNEL

        for ch in self.last_description.get("InputDataConfig", []):
            if ch.get("ChannelName") == VOCAB_CHANNEL:
                return ch["DataSource"]["S3DataSource"]["S3Uri"]
        return None

    def metrics(self) -> dict[str, float]:
        """Final metric values (``FinalMetricDataList``): ``{"validation:bleu": 23.4, ...}``."""
        desc = self.describe()
        return {m["MetricName"]: float(m["Value"]) for m in desc.get("FinalMetricDataList", [])}

    def logs(self) -> list[tuple[str, str]]:
        """Every log line so far as ``(stream, message)``."""
        return LogTailer(self.session.client("logs"), self.name).poll()

    # ------------------------------------------------------------ waiting
    def failure(self, desc: dict[str, Any]) -> TrainingJobFailed:
        """The :class:`TrainingJobFailed` describing a Failed or Stopped job's description."""
        status = desc["TrainingJobStatus"]
        reason = desc.get("FailureReason")
        if status == "Stopped":
            msg = (f"training job {self.name} was Stopped" + (f" ({reason})" if reason else "")
                   + "; pass allow_stopped=True if stopping it was intended, or start a new job")
        else:
            msg = (f"training job {self.name} Failed: {reason or 'no reason given'}. "
                   f"Logs: group {LOG_GROUP}, streams {self.name}/algo-*: {self.log_url} . "
                   f"Console: {self.console_url} . Fix the cause and start a new job")
        err = TrainingJobFailed(msg, job_name=self.name, status=status, reason=reason, log_url=self.log_url)
        err.log_group = LOG_GROUP  # type: ignore[attr-defined]
        err.log_stream_prefix = self.name + "/"  # type: ignore[attr-defined]
        err.console_url = self.console_url  # type: ignore[attr-defined]
        return err

    def wait(self, timeout: float | None = None, logs: bool = False, *, allow_stopped: bool = False,
             log_sink: Callable[[str, str], None] | None = None, progress: bool | None = None) -> dict[str, Any]:
        """Poll with backoff until the job ends; return its final description.

        Raises :class:`TrainingJobFailed` when it Failed (or was Stopped, unless ``allow_stopped``),
        :class:`WaitTimeout` after ``timeout`` seconds (the job keeps running). ``logs=True`` streams
        every CloudWatch stream to ``log_sink(stream, line)`` (default: stdout). On Ctrl-C it says
        how to re-attach or stop the job and re-raises: the job is *not* stopped.
        """
        tailer = LogTailer(self.session.client("logs"), self.name) if logs else None
        sink = log_sink or log_printer()

        def on_poll(desc: dict[str, Any]) -> None:
            if tailer is not None:
                for stream, message in tailer.poll():
                    sink(stream, message)

        def on_interrupt() -> None:
            print(f"\ninterrupted: training job {self.name} keeps running on SageMaker (it was NOT stopped).\n"
                  f"  re-attach: s2s-aws status {self.name} --wait   (or sess.attach({self.name!r}).wait())\n"
                  f"  stop it:   s2s-aws stop {self.name}            (or job.stop())", file=sys.stderr)

        desc = self._poll_until_terminal(timeout, progress=progress, show_line=not logs, on_poll=on_poll,
                                         on_interrupt=on_interrupt)
        if tailer is not None:  # the last lines can arrive after the status changes
            for stream, message in tailer.poll():
                sink(stream, message)
        self.check(desc, allow_stopped=allow_stopped)
        logger.info("training job %s %s", self.name, desc["TrainingJobStatus"])
        return desc

    def check(self, desc: dict[str, Any] | None = None, *, allow_stopped: bool = False) -> dict[str, Any]:
        """Raise :class:`TrainingJobFailed` when the job (``desc``, default: the last description)
        Failed or was Stopped (unless ``allow_stopped``); otherwise return the description."""
        desc = self.last_description if desc is None else desc
        status = desc["TrainingJobStatus"]
        if status == "Failed" or (status == "Stopped" and not allow_stopped):
            raise self.failure(desc)
        return desc

    def stop(self, wait: bool = False, timeout: float | None = None) -> None:
        """Ask SageMaker to stop the job (``wait=True``: until it is Stopped)."""
        try:
            self.session.sagemaker.stop_training_job(TrainingJobName=self.name)
        except Exception as e:
            if error_code(e) == "ValidationException":
                status = self.describe()["TrainingJobStatus"]
                if status in TERMINAL_STATUSES:
                    logger.info("training job %s is already %s; nothing to stop", self.name, status)
                    return
            raise aws_error(f"stopping training job {self.name}", e) from e
        logger.info("stop requested for training job %s", self.name)
        if wait:
            self.wait(timeout=timeout, allow_stopped=True)

    # ------------------------------------------------------------ next steps (owned by the session)
    def deploy(self, instance_type: str = "ml.m5.xlarge", initial_instance_count: int = 1,
               endpoint_name: str | None = None, **kwargs: Any) -> Endpoint:
        """Host this job's model: model -> endpoint config -> endpoint; waits until InService.

        :meth:`Session.deploy <s2s_aws.session.Session.deploy>` with this job's model, image, vocab
        channel and base name as defaults. Returns an :class:`~s2s_aws.hosting.Endpoint`.
        """
        desc = self.describe()
        kwargs.setdefault("image_uri", desc["AlgorithmSpecification"]["TrainingImage"])
        kwargs.setdefault("vocab_uri", self.vocab_uri)
        kwargs.setdefault("base_name", base_of(self.name))
        return self.session.deploy(self.model_artifacts, instance_type=instance_type,
                                   initial_instance_count=initial_instance_count, endpoint_name=endpoint_name,
                                   **kwargs)

    def create_model(self, model_name: str | None = None, **kwargs: Any) -> str:
        """Create a SageMaker model from this job's artifacts; returns its name."""
        desc = self.describe()
        kwargs.setdefault("image_uri", desc["AlgorithmSpecification"]["TrainingImage"])
        return self.session.create_model(self.model_artifacts, model_name=model_name,
                                         base_name=kwargs.pop("base_name", base_of(self.name)), **kwargs)

    def transform(self, input_uri: str, **kwargs: Any) -> TransformJob:
        """Batch transform with this job's model; see :meth:`Session.transform <s2s_aws.session.Session.transform>`."""
        return self.session.transform(self.create_model(), input_uri, **kwargs)
