"""The entry point of the SDK: a :class:`Session` binds a boto3 session to a bucket, prefix and role
(the package docstring, :mod:`s2s_aws`, has the whole journey as an example).

The boto3 session is injected; when ``boto_session`` is None the Session creates
``boto3.Session()`` *once*, i.e. boto3's default credential chain and region (environment,
``AWS_PROFILE``, config files, instance role). Every client is made from that session with
botocore's standard retry mode, so ``AWS_ENDPOINT_URL`` (local mode) is honoured.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ._aws import Backoff, Clock, join_key, make_client, new_run_id
from .errors import InputError

if TYPE_CHECKING:
    from .channels import Channels
    from .cleanup import Resource as CleanupResource
    from .hosting import Endpoint
    from .training import TrainingJob
    from .transform import TransformJob

logger = logging.getLogger(__name__)

__all__ = ["Session"]


class Session:
    """AWS context of a run: boto3 session, S3 bucket/prefix, SageMaker execution role, image.

    Args:
        boto_session: a ``boto3.Session``; None -> ``boto3.Session()`` (default chain).
        bucket: S3 bucket for channels, model artifacts, checkpoints and transform data.
        prefix: key prefix under the bucket (``seq2seq/demo``).
        role_arn: SageMaker execution role (needed to train, host and transform).
        image_uri: the algorithm image; None -> ``s2s_aws.images.resolve_image_uri`` (our image in
            your ECR repository), unless ``builtin=True`` is passed to :meth:`train`.
        run_id: the value of the ``s2s-aws:run`` tag on every resource (default: a new id).
        progress: draw stderr progress bars for uploads and waits.
        max_attempts: botocore standard-mode retry attempts per call (None: ``S2S_MAX_ATTEMPTS`` or 4).
    """

    def __init__(self, boto_session: Any = None, *, bucket: str | None = None, prefix: str = "",
                 role_arn: str | None = None, image_uri: str | None = None, run_id: str | None = None,
                 progress: bool = False, max_attempts: int | None = None, backoff: Backoff | None = None,
                 clock: Clock | None = None):
        if boto_session is None:
            import boto3

            boto_session = boto3.Session()
        self.boto_session = boto_session
        self.bucket = bucket
        self.prefix = join_key(prefix or "")
        self.role_arn = role_arn
        self.image_uri = image_uri
        self.run_id = run_id or new_run_id()
        self.progress = progress
        from ._aws import connect_timeout_default, max_attempts_default

        connect_timeout_default()  # a bad S2S_CONNECT_TIMEOUT_S is an InputError now, not in a client call
        self.max_attempts = max_attempts or max_attempts_default()
        self.backoff = backoff or Backoff()
        self.clock = clock or Clock()
        self._clients: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (f"Session(region={self.region!r}, bucket={self.bucket!r}, prefix={self.prefix!r}, "
                f"run_id={self.run_id!r})")

    # ------------------------------------------------------------ basics
    @property
    def region(self) -> str:
        region = getattr(self.boto_session, "region_name", None)
        if not region:
            raise InputError("no AWS region configured; pass boto3.Session(region_name=...), "
                             "--region, or set AWS_REGION / AWS_DEFAULT_REGION")
        return region

    def client(self, service: str) -> Any:
        """A cached client for ``service`` (standard retries) from the injected boto3 session."""
        if service not in self._clients:
            self._clients[service] = make_client(self.boto_session, service, max_attempts=self.max_attempts)
        return self._clients[service]

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    def require_bucket(self) -> str:
        if not self.bucket:
            raise InputError("no S3 bucket configured; pass Session(bucket=...) (CLI: --bucket or S2S_BUCKET)")
        return self.bucket

    def require_role(self) -> str:
        if not self.role_arn:
            raise InputError("no SageMaker execution role configured; pass Session(role_arn=...) "
                             "(CLI: --role-arn or S2S_ROLE_ARN)")
        return self.role_arn

    def s3_uri(self, *parts: str) -> str:
        """``s3://bucket/prefix/<parts>``."""
        return f"s3://{self.require_bucket()}/{join_key(self.prefix, *parts)}"

    def resolve_image(self, image_uri: str | None = None, *, builtin: bool = False) -> str:
        """The image to run: explicit > session's > ``s2s_aws.images`` default (or the AWS built-in)."""
        uri = image_uri or (None if builtin else self.image_uri)
        if uri:
            return uri
        try:
            from .images import resolve_image_uri
        except ImportError as e:
            raise InputError("no algorithm image given and s2s_aws.images is not available; pass "
                             "image_uri=... (CLI: --image-uri)") from e
        return resolve_image_uri(self.boto_session, self.region, image_uri=None, builtin=builtin)

    # ------------------------------------------------------------ the journey
    def upload_channels(self, local_dir: str | os.PathLike, *, force: bool = False, **kwargs: Any) -> Channels:
        """Validate and upload a prep directory as the train/validation/vocab channels.

        See :func:`s2s_aws.channels.upload_channels`. Returns :class:`~s2s_aws.channels.Channels`.
        """
        from .channels import upload_channels

        return upload_channels(self.s3, local_dir, self.require_bucket(), self.prefix, force=force,
                               progress=kwargs.pop("progress", self.progress), **kwargs)

    def channels(self) -> Channels:
        """The channel URIs under this session's bucket/prefix (data already uploaded)."""
        from .channels import Channels

        return Channels.from_prefix(self.require_bucket(), self.prefix)

    def train(self, channels: Any = None, hyperparameters: Mapping[str, Any] | None = None, *,
              instance_type: str = "ml.g5.xlarge", instance_count: int = 1, wait: bool = False,
              logs: bool = False, **kwargs: Any) -> TrainingJob:
        """Start a training job; see :func:`s2s_aws.training.start_training` for every option.

        ``channels`` is a :class:`Channels`, a mapping of channel name -> S3 URI, or None for
        the channels under this session's prefix. Returns a :class:`~s2s_aws.training.TrainingJob`.
        """
        from .training import start_training

        job = start_training(self, channels, hyperparameters, instance_type=instance_type,
                             instance_count=instance_count, **kwargs)
        if wait:
            job.wait(logs=logs)
        return job

    def attach(self, job_name: str) -> TrainingJob:
        """The :class:`~s2s_aws.training.TrainingJob` called ``job_name`` (checks that it exists)."""
        from .training import TrainingJob

        job = TrainingJob(self, job_name)
        job.describe()
        return job

    def endpoint(self, endpoint_name: str, *, vocab_dir: str | None = None, vocab_uri: str | None = None) -> Endpoint:
        """The :class:`~s2s_aws.hosting.Endpoint` called ``endpoint_name``."""
        from .hosting import Endpoint

        return Endpoint(self, endpoint_name, vocab_dir=vocab_dir, vocab_uri=vocab_uri)

    def create_model(self, model_data: str, **kwargs: Any) -> str:
        """``CreateModel`` for a ``model.tar.gz``; see :func:`s2s_aws.hosting.create_model`. Returns its name."""
        from .hosting import create_model

        return create_model(self, model_data, **kwargs)

    def deploy(self, model_data: str, **kwargs: Any) -> Endpoint:
        """Host a ``model.tar.gz``; see :func:`s2s_aws.hosting.deploy` (the one deploy:
        :meth:`TrainingJob.deploy <s2s_aws.training.TrainingJob.deploy>` comes here)."""
        from .hosting import deploy

        return deploy(self, model_data, **kwargs)

    def transform(self, model_name: str, input_uri: str, **kwargs: Any) -> TransformJob:
        """Run a batch transform; see :func:`s2s_aws.transform.start_transform`."""
        from .transform import start_transform

        return start_transform(self, model_name, input_uri, **kwargs)

    def cleanup(self, *, run_id: str | None = None, older_than: Any = None, dry_run: bool = False,
                kinds: Sequence[str] | None = None) -> list[CleanupResource]:
        """Delete resources of a run (or older than an age); see :func:`s2s_aws.cleanup.cleanup`."""
        from .cleanup import cleanup

        return cleanup(self, run_id=run_id, older_than=older_than, dry_run=dry_run, kinds=kinds)
