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
from typing import Any

from ..contract._files import write_text_atomic
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


# ------------------------------------------------------------------------------------ definition
def _definition_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    """The options of ``definition``/``upsert``: the pipeline settings that declare a ``cli`` option.

    Derived from :data:`s2s_aws.pipeline.settings.SETTINGS`. Settings without a default are
    required for ``upsert``; for ``definition`` an unset one becomes its ``${Name}`` placeholder.
    """
    from ..pipeline.settings import SETTINGS

    g = p.add_argument_group("pipeline settings" + ("" if required else
                                                    " (unset values become ${Name} placeholders)"))
    for s in SETTINGS:
        if not s.cli:
            continue
        if s.name == "pipeline_name":  # shared with start/status: the CI's pipeline by default
            g.add_argument(s.cli, dest=s.name, default=_DEFAULT_PIPELINE,
                           help="default: $S2S_PIPELINE_NAME or %(default)s")
        elif s.type == "bool":
            g.add_argument(s.cli, dest=s.name, action="store_true", help=s.help)
        elif s.type.startswith("Mapping"):
            g.add_argument(s.cli, dest=s.name, action="append", default=[], metavar="NAME=VALUE", help=s.help)
        elif s.required:
            g.add_argument(s.cli, dest=s.name, required=required, help=s.help)
        else:
            kind = {"int": int, "float": float}.get(s.type, str)
            g.add_argument(s.cli, dest=s.name, type=kind, default=s.default,
                           help=s.help if s.default is None else f"{s.help} (default: %(default)s)")


def _config(args: argparse.Namespace) -> Any:
    """The :class:`~s2s_aws.pipeline.PipelineConfig` of the options given to ``definition``/``upsert``."""
    from ..pipeline.settings import SETTINGS, PipelineConfig, split_parameters

    values: dict[str, Any] = {}
    for s in SETTINGS:
        if not s.cli:
            continue
        value = getattr(args, s.name)
        if s.type.startswith("Mapping"):
            value = split_parameters(value, option=s.cli, example="batch_size=64")
        elif s.required and not value:
            value = s.placeholder
        values[s.name] = value
    return PipelineConfig(**values)


def cmd_definition(args: argparse.Namespace) -> int:
    from ..pipeline import definition_json

    text = definition_json(_config(args))
    if args.output:
        write_text_atomic(args.output, text + "\n", mkdir=True)
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
