"""Running the pipeline with boto3: create/update it, start executions, follow them to the end.

A boto3 ``sagemaker`` client is passed in (``s2s-aws pipeline`` uses these for CI-triggered
retraining); nothing here imports the sagemaker package.

Example::

    import boto3
    from s2s_aws.pipeline import start_execution, wait_execution
    sm = boto3.client("sagemaker")
    arn = start_execution(sm, name="s2s-dev-pipeline", parameters={"DataVersion": "abc123"})
    print(wait_execution(sm, arn).status)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import InputError, WaitTimeout
from .settings import HYPERPARAMETER_PARAMETERS, PARAM_MIN_BLEU, STEP_FAIL

__all__ = [
    "ExecutionSummary",
    "TERMINAL_STATUSES",
    "validate_parameters",
    "upsert_pipeline",
    "start_execution",
    "latest_execution",
    "describe_execution",
    "wait_execution",
]

TERMINAL_STATUSES = ("Succeeded", "Failed", "Stopped")


@dataclass
class ExecutionSummary:
    """Where a pipeline execution stands: status, failure reason, and every step's status."""

    arn: str
    status: str
    failure_reason: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    @property
    def quality_gate_failed(self) -> bool:
        """True when the execution ended in the BLEU fail step."""
        return any(s["name"] == STEP_FAIL and s["status"] in ("Failed", "Succeeded") for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"execution_arn": self.arn, "status": self.status, "failure_reason": self.failure_reason,
                "quality_gate_failed": self.quality_gate_failed, "steps": self.steps}


def validate_parameters(params: Mapping[str, str]) -> None:
    """Check hyperparameter-backed pipeline parameters with the hyperparameter schema.

    Raises :class:`InputError` (from ``HyperparameterError``) before anything is started.
    """
    from ..contract.hyperparameters import Hyperparameters

    by_param = {p: hp for hp, p in HYPERPARAMETER_PARAMETERS.items()}
    hps = {by_param[k]: v for k, v in params.items() if k in by_param}
    if hps:
        Hyperparameters.from_strings(hps)
    if PARAM_MIN_BLEU in params:
        try:
            float(params[PARAM_MIN_BLEU])
        except ValueError:
            raise InputError(f"--param {PARAM_MIN_BLEU}={params[PARAM_MIN_BLEU]!r} is not a number") from None


def upsert_pipeline(sagemaker: Any, *, name: str, definition: str, role_arn: str,
                    description: str = "s2s retraining pipeline") -> tuple[str, str]:
    """Create the pipeline, or update it when it exists. Returns ``(pipeline_arn, "created"|"updated")``."""
    from .._aws import error_code

    try:
        sagemaker.describe_pipeline(PipelineName=name)
        exists = True
    except Exception as e:  # botocore ClientError
        if error_code(e) != "ResourceNotFound":
            raise
        exists = False
    call = sagemaker.update_pipeline if exists else sagemaker.create_pipeline
    resp = call(PipelineName=name, PipelineDefinition=definition, PipelineDescription=description,
                RoleArn=role_arn)
    return resp["PipelineArn"], "updated" if exists else "created"


def start_execution(sagemaker: Any, *, name: str, parameters: Mapping[str, str] | None = None,
                    display_name: str | None = None) -> str:
    """Start an execution of pipeline ``name``; returns the execution ARN."""
    kwargs: dict[str, Any] = {"PipelineName": name}
    if parameters:
        validate_parameters(parameters)
        kwargs["PipelineParameters"] = [{"Name": k, "Value": str(v)} for k, v in parameters.items()]
    if display_name:
        kwargs["PipelineExecutionDisplayName"] = display_name
    return sagemaker.start_pipeline_execution(**kwargs)["PipelineExecutionArn"]


def latest_execution(sagemaker: Any, *, name: str) -> str:
    """ARN of the most recent execution of pipeline ``name``; :class:`InputError` when there is none."""
    resp = sagemaker.list_pipeline_executions(PipelineName=name, SortBy="CreationTime",
                                              SortOrder="Descending", MaxResults=1)
    items = resp.get("PipelineExecutionSummaries", [])
    if not items:
        raise InputError(f"pipeline {name!r} has no executions yet; start one with 's2s-aws pipeline start'")
    return items[0]["PipelineExecutionArn"]


def describe_execution(sagemaker: Any, arn: str) -> ExecutionSummary:
    """Status of execution ``arn`` with its steps (oldest first) and their failure reasons."""
    desc = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    steps: list[dict[str, Any]] = []
    pages = sagemaker.get_paginator("list_pipeline_execution_steps").paginate(
        PipelineExecutionArn=arn, SortOrder="Ascending")
    for page in pages:
        for s in page.get("PipelineExecutionSteps", []):
            step = {"name": s.get("StepName"), "status": s.get("StepStatus")}
            if s.get("FailureReason"):
                step["failure_reason"] = s["FailureReason"]
            if s.get("CacheHitResult", {}).get("SourcePipelineExecutionArn"):
                step["cache_hit"] = True
            steps.append(step)
    reason = desc.get("FailureReason")
    if not reason:
        failed = [s for s in steps if s.get("failure_reason")]
        reason = failed[0]["failure_reason"] if failed else None
    return ExecutionSummary(arn=arn, status=desc["PipelineExecutionStatus"], failure_reason=reason, steps=steps)


def wait_execution(sagemaker: Any, arn: str, *, poll_seconds: float = 30.0, timeout: float | None = None,
                   sleep: Callable[[float], None] | None = None,
                   on_change: Callable[[ExecutionSummary], None] | None = None) -> ExecutionSummary:
    """Poll until the execution is Succeeded, Failed or Stopped; return its summary.

    Raises :class:`~s2s_aws.errors.WaitTimeout` after ``timeout`` seconds (the execution goes on).
    ``on_change(summary)`` is called whenever a step status changes (progress output).
    """
    sleep = sleep or time.sleep
    start = time.monotonic()
    seen: list[tuple[str, str]] = []
    while True:
        summary = describe_execution(sagemaker, arn)
        state = [(s["name"], s["status"]) for s in summary.steps] + [("", summary.status)]
        if state != seen and on_change is not None:
            on_change(summary)
        seen = state
        if summary.status in TERMINAL_STATUSES:
            return summary
        if timeout is not None and time.monotonic() - start >= timeout:
            raise WaitTimeout(f"pipeline execution {arn} is still {summary.status} after {timeout:.0f} s; "
                              f"it keeps running - check it later with 's2s-aws pipeline status {arn}'")
        sleep(poll_seconds)
