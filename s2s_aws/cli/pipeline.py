"""``s2s-aws pipeline``: the SageMaker retraining pipeline from the command line (CI).

* ``definition``  print (or ``--output FILE``) the pipeline definition JSON, built offline;
* ``upsert``      create or update the pipeline in SageMaker;
* ``start``       start an execution (``--param Name=Value``); ``--wait`` follows it to the end;
* ``status``      show an execution (default: the latest) and its steps.

Exit codes: 0 ok, 1 the execution failed or stopped, or the BLEU quality gate failed, 2 bad input.
``--json`` prints one JSON object instead of text, for CI.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InputError

logger = logging.getLogger(__name__)

_DEFAULT_PIPELINE = os.environ.get("S2S_PIPELINE_NAME", "s2s-dev-pipeline")


def _sagemaker_client(args: argparse.Namespace) -> Any:
    import boto3
    import botocore.exceptions

    from .._aws import make_client

    try:
        session = boto3.Session(region_name=getattr(args, "region", None), profile_name=getattr(args, "profile", None))
    except botocore.exceptions.ProfileNotFound as e:
        raise InputError(f"AWS profile {args.profile!r} not found; check --profile and ~/.aws/config") from e
    if not session.region_name:
        raise InputError("no AWS region; pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    return make_client(session, "sagemaker")


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------------ definition
def _definition_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    g = p.add_argument_group("pipeline settings" + ("" if required else
                                                    " (unset values become ${Name} placeholders)"))
    g.add_argument("--pipeline-name", default=_DEFAULT_PIPELINE, help="default: $S2S_PIPELINE_NAME or %(default)s")
    g.add_argument("--role-arn", required=required, help="execution role of the jobs and the model")
    g.add_argument("--image-uri", required=required, help="the algorithm image")
    g.add_argument("--data-bucket", required=required, help="bucket with raw/ parallel text")
    g.add_argument("--artifacts-bucket", required=required, help="bucket for channels, models, reports")
    g.add_argument("--deploy-function-arn", required=required, help="register-and-deploy Lambda")
    g.add_argument("--kms-key-arn", help="KMS key for job volumes and outputs")
    g.add_argument("--model-package-group", default="s2s-models")
    g.add_argument("--endpoint-name", default="s2s-endpoint")
    g.add_argument("--source-lang", default="en")
    g.add_argument("--target-lang", default="ja")
    g.add_argument("--min-bleu", type=float, default=10.0)
    g.add_argument("--spot", action="store_true", help="managed spot training (fixed in the definition)")
    g.add_argument("--hp", action="append", default=[], metavar="NAME=VALUE",
                   help="hyperparameter default (repeatable)")


def _config(args: argparse.Namespace) -> Any:
    from ..pipeline import PipelineConfig, split_parameters

    def value(name: str, placeholder: str) -> str:
        return getattr(args, name) or placeholder

    return PipelineConfig(
        pipeline_name=args.pipeline_name,
        role_arn=value("role_arn", "arn:aws:iam::${AWS::AccountId}:role/${ExecutionRoleName}"),
        image_uri=value("image_uri", "${ImageUri}"),
        data_bucket=value("data_bucket", "${DataBucket}"),
        artifacts_bucket=value("artifacts_bucket", "${ArtifactsBucket}"),
        deploy_function_arn=value("deploy_function_arn", "${DeployFunctionArn}"),
        kms_key_arn=args.kms_key_arn,
        model_package_group=args.model_package_group,
        endpoint_name=args.endpoint_name,
        source_lang=args.source_lang,
        target_lang=args.target_lang,
        min_bleu=args.min_bleu,
        use_spot=args.spot,
        hyperparameters=split_parameters(args.hp),
    )


def cmd_definition(args: argparse.Namespace) -> int:
    from ..pipeline import definition_json

    text = definition_json(_config(args))
    if args.output:
        _write_atomic(Path(args.output), text + "\n")
        if getattr(args, "json", False):
            print(json.dumps({"output": str(args.output), "bytes": len(text) + 1}))
        else:
            print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_upsert(args: argparse.Namespace) -> int:
    from ..pipeline import definition_json, upsert_pipeline

    definition = definition_json(_config(args), indent=None)
    arn, action = upsert_pipeline(_sagemaker_client(args), name=args.pipeline_name, definition=definition,
                                  role_arn=args.pipeline_role_arn)
    _emit(args, {"pipeline_arn": arn, "action": action}, f"{action} {arn}")
    return 0


# ------------------------------------------------------------------------------- start / status
def _summary_text(summary: Any) -> str:
    lines = [f"{summary.arn}: {summary.status}"]
    for s in summary.steps:
        extra = " (cached)" if s.get("cache_hit") else ""
        if s.get("failure_reason"):
            extra += f": {s['failure_reason']}"
        lines.append(f"  {s['name']:<22} {s['status']}{extra}")
    if summary.quality_gate_failed:
        lines.append("quality gate failed: " + (summary.failure_reason or "BLEU below MinBleu"))
    elif summary.status in ("Failed", "Stopped") and summary.failure_reason:
        lines.append(f"reason: {summary.failure_reason}")
    return "\n".join(lines)


def _exit_code(summary: Any) -> int:
    if summary.status in ("Failed", "Stopped") or summary.quality_gate_failed:
        return 1
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from ..pipeline import split_parameters, start_execution, wait_execution

    sm = _sagemaker_client(args)
    params = split_parameters(args.param)
    arn = start_execution(sm, name=args.pipeline_name, parameters=params, display_name=args.display_name)
    if not args.wait:
        _emit(args, {"execution_arn": arn, "status": "Executing"}, arn)
        return 0
    json_mode = getattr(args, "json", False)

    def progress(summary: Any) -> None:
        if not json_mode:
            running = [s["name"] for s in summary.steps if s["status"] == "Executing"]
            print(f"{summary.status}: " + (", ".join(running) or "-"), file=sys.stderr)

    summary = wait_execution(sm, arn, poll_seconds=args.poll, timeout=args.timeout, on_change=progress)
    _emit(args, summary.to_dict(), _summary_text(summary))
    return _exit_code(summary)


def cmd_status(args: argparse.Namespace) -> int:
    from ..pipeline import describe_execution, latest_execution

    sm = _sagemaker_client(args)
    arn = args.execution_arn or latest_execution(sm, name=args.pipeline_name)
    summary = describe_execution(sm, arn)
    _emit(args, summary.to_dict(), _summary_text(summary))
    return _exit_code(summary)


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``s2s-aws pipeline {definition,upsert,start,status}``."""
    common = list(parents)
    group = subparsers.add_parser("pipeline", parents=common, help="the SageMaker retraining pipeline",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = group.add_subparsers(dest="pipeline_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("definition", parents=common, help="print the pipeline definition JSON (offline)")
    _definition_options(p, required=False)
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_definition)

    p = sub.add_parser("upsert", parents=common, help="create or update the pipeline in SageMaker")
    _definition_options(p, required=True)
    p.add_argument("--pipeline-role-arn", required=True, help="role SageMaker Pipelines runs the steps with")
    p.set_defaults(func=cmd_upsert)

    p = sub.add_parser("start", parents=common, help="start a pipeline execution")
    p.add_argument("--pipeline-name", default=_DEFAULT_PIPELINE, help="default: $S2S_PIPELINE_NAME or %(default)s")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="pipeline parameter, e.g. DataVersion=$GIT_SHA, MinBleu=20 (repeatable)")
    p.add_argument("--display-name", help="execution display name")
    p.add_argument("--wait", action="store_true", help="wait for the end; exit 1 if it failed")
    p.add_argument("--poll", type=float, default=30.0, help="seconds between status checks (default 30)")
    p.add_argument("--timeout", type=float, default=None, help="give up waiting after this many seconds")
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("status", parents=common, help="show an execution (default: the latest)")
    p.add_argument("execution_arn", nargs="?", help="pipeline execution ARN")
    p.add_argument("--pipeline-name", default=_DEFAULT_PIPELINE, help="default: $S2S_PIPELINE_NAME or %(default)s")
    p.set_defaults(func=cmd_status)
