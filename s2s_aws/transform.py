"""Batch transform over an S3 prefix of jsonlines files (``{"source": "..."}`` per line).

Example::

    uri = upload_jsonlines(sess, ["can you drive a car ?", "i am a student ."])
    tj = job.transform(uri, instance_type="ml.m5.xlarge")
    tj.wait()
    print(tj.targets())          # one target per input line, in input order

SageMaker writes ``<input file>.out`` per input file under the output prefix, one
``{"target": "..."}`` line per input line (``SplitType Line``, ``AssembleWith Line``).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ._aws import aws_error, base_of, error_code, join_key, log_url, make_tags, split_s3_uri, unique_name
from ._resource import Resource
from .contract.inference import INVOCATION_LIMIT_MB, JSONLINES, decode_jsonlines, to_jsonlines
from .errors import InputError, TransformJobFailed, WaitTimeout

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger(__name__)

__all__ = ["TransformJob", "start_transform", "upload_jsonlines", "to_jsonlines", "build_transform_request"]

TERMINAL = ("Completed", "Failed", "Stopped")


def upload_jsonlines(session: Session, sentences: Iterable[str], *, name: str = "input.jsonl",
                     prefix: str | None = None) -> str:
    """Upload sentences as one jsonlines file; returns the S3 *prefix* URI to transform."""
    key_prefix = prefix or join_key(session.prefix, "transform", unique_name("input"))
    body = to_jsonlines(sentences)
    if not body:
        raise InputError("no sentences to transform")
    bucket = session.require_bucket()
    key = join_key(key_prefix, name)
    try:
        session.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=JSONLINES)
    except Exception as e:
        raise aws_error(f"uploading s3://{bucket}/{key}", e) from e
    return f"s3://{bucket}/{join_key(key_prefix)}/"


def build_transform_request(job_name: str, model_name: str, input_uri: str, output_uri: str, *,
                            instance_type: str, instance_count: int, run_id: str, max_payload_mb: int = INVOCATION_LIMIT_MB,
                            max_concurrent_transforms: int | None = None, kms_key: str | None = None,
                            tags: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``CreateTransformJob`` request for jsonlines in and out."""
    split_s3_uri(input_uri)
    split_s3_uri(output_uri)
    if not instance_type.startswith("ml."):
        raise InputError(f"instance_type {instance_type!r} is not a SageMaker instance type")
    request: dict[str, Any] = {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": int(max_payload_mb),
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": JSONLINES,
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": JSONLINES, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": int(instance_count)},
        "Tags": make_tags(run_id, tags),
    }
    if max_concurrent_transforms:
        request["MaxConcurrentTransforms"] = int(max_concurrent_transforms)
    if kms_key:
        request["TransformOutput"]["KmsKeyId"] = kms_key
    return request


def start_transform(session: Session, model_name: str, input_uri: str, *, output_uri: str | None = None,
                    instance_type: str = "ml.m5.xlarge", instance_count: int = 1, job_name: str | None = None,
                    max_payload_mb: int = INVOCATION_LIMIT_MB, max_concurrent_transforms: int | None = None,
                    kms_key: str | None = None, tags: Mapping[str, str] | None = None) -> "TransformJob":
    """``CreateTransformJob`` over ``input_uri`` (an S3 prefix of jsonlines files) with ``model_name``."""
    name = job_name or unique_name(base_of(model_name)[:30] + "-transform")
    output_uri = output_uri or session.s3_uri("transform", name, "output") + "/"
    request = build_transform_request(name, model_name, input_uri, output_uri, instance_type=instance_type,
                                      instance_count=instance_count, run_id=session.run_id,
                                      max_payload_mb=max_payload_mb,
                                      max_concurrent_transforms=max_concurrent_transforms, kms_key=kms_key, tags=tags)
    try:
        session.sagemaker.create_transform_job(**request)
    except Exception as e:
        if error_code(e) == "ResourceInUse":
            raise InputError(f"a transform job named {name!r} already exists; pick another job_name") from e
        raise aws_error(f"creating transform job {name}", e, "check the model name and the S3 URIs") from e
    logger.info("created transform job %s: %s -> %s", name, input_uri, output_uri)
    return TransformJob(session, name)


class TransformJob(Resource):
    """A batch transform job."""

    kind = "transform job"
    describe_method = "describe_transform_job"
    name_parameter = "TransformJobName"
    status_field = "TransformJobStatus"
    terminal_statuses = TERMINAL
    console_kind = "transform-jobs"

    @property
    def output_uri(self) -> str:
        desc = self._desc or self.describe()
        return desc["TransformOutput"]["S3OutputPath"]

    def _timeout_error(self, desc: dict[str, Any], elapsed: float) -> WaitTimeout:
        return WaitTimeout(f"transform job {self.name} is still {desc['TransformJobStatus']} after "
                           f"{elapsed:.0f}s; it keeps running. Wait again with TransformJob.wait() or "
                           f"stop it with TransformJob.stop()")

    def wait(self, timeout: float | None = None, *, progress: bool | None = None) -> dict[str, Any]:
        """Wait until the job ends; TransformJobFailed unless it Completed."""
        desc = self._poll_until_terminal(timeout, progress=progress)
        status = desc["TransformJobStatus"]
        if status != "Completed":
            reason = desc.get("FailureReason")
            logs = log_url(self.session.region, "/aws/sagemaker/TransformJobs", self.name + "/")
            raise TransformJobFailed(f"transform job {self.name} {status}: {reason or 'no reason given'}. "
                                     f"Logs: {logs} . Fix the input or model and start a new job",
                                     job_name=self.name, status=status, reason=reason)
        return desc

    def stop(self) -> None:
        try:
            self.session.sagemaker.stop_transform_job(TransformJobName=self.name)
        except Exception as e:
            raise aws_error(f"stopping transform job {self.name}", e) from e

    def results(self) -> list[dict[str, Any]]:
        """Every output line as a dict, files in key order, lines in file order."""
        bucket, prefix = split_s3_uri(self.output_uri)
        s3 = self.session.s3
        out: list[dict[str, Any]] = []
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".out")]
        if not keys:
            raise InputError(f"no .out files under {self.output_uri}; is transform job {self.name} Completed?")
        for key in sorted(keys):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            out += decode_jsonlines(body, where=f"s3://{bucket}/{key}")
        return out

    def targets(self) -> list[str]:
        """The ``target`` of every output line."""
        return [r.get("target", "") for r in self.results()]
