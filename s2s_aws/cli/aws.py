"""``s2s-aws`` AWS commands: upload, train, status, logs, stop, deploy, translate, update-endpoint,
transform, cleanup, delete-endpoint.

Bucket, prefix and role come from flags or ``S2S_BUCKET``, ``S2S_PREFIX``, ``S2S_ROLE_ARN``
(``S2S_IMAGE_URI``, ``S2S_RUN_ID`` too). ``--json`` prints one JSON object on stdout (progress
goes to stderr and is off). Exit codes: 0 ok, 1 job/endpoint failed, 2 bad input.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..cleanup import KINDS
from ..contract.inference import JSON, RECORDIO, TranslationResult, json_lines
from ..errors import AWSOperationError, InputError, S2SError
from ..training import TrainingConfig, log_printer

logger = logging.getLogger(__name__)

ENV = {"bucket": "S2S_BUCKET", "prefix": "S2S_PREFIX", "role_arn": "S2S_ROLE_ARN",
       "image_uri": "S2S_IMAGE_URI", "run_id": "S2S_RUN_ID"}


# ---------------------------------------------------------------- helpers
def _setting(args: argparse.Namespace, name: str) -> Any:
    value = getattr(args, name, None)
    return value if value not in (None, "") else os.environ.get(ENV[name]) or None


def _session(args: argparse.Namespace):
    import boto3
    import botocore.exceptions

    from ..session import Session

    try:
        boto_session = boto3.Session(region_name=args.region, profile_name=args.profile)
    except botocore.exceptions.ProfileNotFound as e:
        raise InputError(f"AWS profile {args.profile!r} not found; check --profile and ~/.aws/config") from e
    if not boto_session.region_name:
        raise InputError("no AWS region; pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    return Session(boto_session, bucket=_setting(args, "bucket"), prefix=_setting(args, "prefix") or "",
                   role_arn=_setting(args, "role_arn"), image_uri=_setting(args, "image_uri"),
                   run_id=_setting(args, "run_id"), progress=not args.json)


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str | None = None) -> None:
    if args.json:
        print(json.dumps(data, default=str, ensure_ascii=False))
    elif text:
        print(text)


def _handler(fn: Callable[[argparse.Namespace], int | None]) -> Callable[[argparse.Namespace], int]:
    """Map botocore errors to S2SError (with a next step) and, with --json, print errors as JSON too."""

    @functools.wraps(fn)
    def wrapper(args: argparse.Namespace) -> int:
        import botocore.exceptions

        try:
            try:
                return fn(args) or 0
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                from .._aws import map_botocore_error

                raise map_botocore_error(e, f"s2s-aws {args.command}") from e
        except S2SError as e:
            if args.json:
                out: dict[str, Any] = {"ok": False, "error": str(e), "error_type": type(e).__name__,
                                       "exit_code": e.exit_code}
                for attr in ("job_name", "endpoint_name", "status", "reason", "log_url", "console_url"):
                    if getattr(e, attr, None) is not None:
                        out[attr] = getattr(e, attr)
                print(json.dumps(out, default=str))
                e.json_printed = True  # type: ignore[attr-defined]  # main() must not print a second one
            raise

    return wrapper


def _key_values(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{what} {item!r} is not KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _read_sentences(args: argparse.Namespace) -> list[str]:
    sentences = list(args.sentences or [])
    if not sentences:
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("no sentences: pass them as arguments or pipe them on stdin, one per line")
        sentences = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not sentences:
        raise InputError("no sentences on stdin; pipe tokenized sentences, one per line")
    return sentences


def _job_summary(job: Any, desc: dict[str, Any]) -> dict[str, Any]:
    out = {"job_name": job.name, "status": desc.get("TrainingJobStatus"),
           "secondary_status": desc.get("SecondaryStatus"), "console_url": job.console_url,
           "log_url": job.log_url}
    if desc.get("FailureReason"):
        out["failure_reason"] = desc["FailureReason"]
    if desc.get("ModelArtifacts", {}).get("S3ModelArtifacts"):
        out["model_artifacts"] = desc["ModelArtifacts"]["S3ModelArtifacts"]
    metrics = {m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList", [])}
    if metrics:
        out["metrics"] = metrics
    return out


def _log_printer(json_mode: bool) -> Callable[[str, str], None]:
    """The SDK's ``[algo-1] line`` printer; with --json logs go to stderr so stdout stays one JSON object."""
    return log_printer(sys.stderr if json_mode else sys.stdout)


# ---------------------------------------------------------------- handlers
@_handler
def cmd_upload(args: argparse.Namespace) -> int:
    sess = _session(args)
    channels = sess.upload_channels(args.directory, force=args.force)
    _emit(args, {"ok": True, "channels": channels.as_dict(), "uploaded": list(channels.uploaded),
                 "skipped": list(channels.skipped)},
          "\n".join([f"{k}: {v}" for k, v in channels.as_dict().items()]
                    + [f"uploaded {len(channels.uploaded)} file(s), skipped {len(channels.skipped)} unchanged"]))
    return 0


def _wait_job(args: argparse.Namespace, job: Any) -> dict[str, Any]:
    return job.wait(timeout=args.timeout, logs=args.logs, allow_stopped=getattr(args, "allow_stopped", False),
                    log_sink=_log_printer(args.json))


@_handler
def cmd_train(args: argparse.Namespace) -> int:
    from ..channels import Channels

    sess = _session(args)
    if args.data:
        channels = sess.upload_channels(args.data)
    elif args.channels_prefix:
        from .._aws import split_s3_uri

        bucket, key = split_s3_uri(args.channels_prefix)
        channels = Channels.from_prefix(bucket, key)
    else:
        channels = sess.channels()
    config = dict(instance_type=args.instance_type, instance_count=args.instance_count,
                  volume_size_gb=args.volume_size, max_runtime_s=args.max_runtime, spot=args.spot,
                  max_wait_s=args.max_wait, checkpoint_s3_uri=args.checkpoint_s3_uri, output_path=args.output_path,
                  subnets=args.subnet or (), security_group_ids=args.security_group or (),
                  network_isolation=args.network_isolation, volume_kms_key=args.volume_kms_key,
                  output_kms_key=args.output_kms_key, tags=_key_values(args.tag, "--tag"),
                  base_job_name=args.base_name)
    job = sess.train(channels, _key_values(args.hp, "--hp"), image_uri=args.image_uri, builtin=args.builtin,
                     job_name=args.job_name, **config)
    if not args.json:
        print(f"started training job {job.name} (run {sess.run_id})\n  {job.console_url}", file=sys.stderr)
    desc = _wait_job(args, job) if (args.wait or args.logs) else job.describe()
    out = {"ok": True, "run_id": sess.run_id, **_job_summary(job, desc)}
    _emit(args, out, f"{job.name} {out['status']}" + (f" {out['model_artifacts']}" if "model_artifacts" in out else ""))
    return 0


@_handler
def cmd_status(args: argparse.Namespace) -> int:
    sess = _session(args)
    job = sess.attach(args.name)
    if args.wait or args.logs:
        desc = _wait_job(args, job)
    else:
        desc = job.check(allow_stopped=args.allow_stopped)
    out = {"ok": True, **_job_summary(job, desc)}
    lines = [f"{job.name}: {out['status']} ({out.get('secondary_status') or '-'})"]
    if "model_artifacts" in out:
        lines.append(f"  model: {out['model_artifacts']}")
    for k, v in out.get("metrics", {}).items():
        lines.append(f"  {k} = {v}")
    _emit(args, out, "\n".join(lines))
    return 0


@_handler
def cmd_logs(args: argparse.Namespace) -> int:
    sess = _session(args)
    job = sess.attach(args.name)
    if args.follow:
        args.logs, args.allow_stopped = True, True
        desc = _wait_job(args, job)
        _emit(args, {"ok": True, **_job_summary(job, desc)})
        return 0
    lines = job.logs()
    if args.json:
        _emit(args, {"ok": True, "job_name": job.name, "lines": [{"stream": s, "message": m} for s, m in lines]})
    else:
        sink = _log_printer(False)
        for stream, message in lines:
            sink(stream, message)
        if not lines:
            print(f"no log lines yet for {job.name} ({job.log_url})", file=sys.stderr)
    return 0


@_handler
def cmd_stop(args: argparse.Namespace) -> int:
    sess = _session(args)
    job = sess.attach(args.name)
    job.stop(wait=args.wait, timeout=args.timeout)
    status = job.describe()["TrainingJobStatus"]
    _emit(args, {"ok": True, "job_name": job.name, "status": status}, f"{job.name}: {status} (stop requested)")
    return 0


def _autoscaling(args: argparse.Namespace):
    if args.max_instances is None:
        return None
    from ..hosting import AutoScaling

    return AutoScaling(min_instances=args.min_instances, max_instances=args.max_instances,
                       target_invocations_per_instance=args.target_invocations)


@_handler
def cmd_deploy(args: argparse.Namespace) -> int:
    sess = _session(args)
    kwargs = dict(instance_type=args.instance_type, initial_instance_count=args.instance_count,
                  endpoint_name=args.endpoint_name, autoscaling=_autoscaling(args), wait=not args.no_wait,
                  timeout=args.timeout)
    if args.job:
        endpoint = sess.attach(args.job).deploy(**kwargs)
    elif args.model_data:
        endpoint = sess.deploy(args.model_data, image_uri=args.image_uri, vocab_uri=args.vocab_uri, **kwargs)
    else:
        raise InputError("deploy needs --job NAME (a Completed training job) or --model-data s3://.../model.tar.gz")
    status = endpoint.status
    _emit(args, {"ok": True, "endpoint_name": endpoint.name, "status": status, "run_id": sess.run_id,
                 "console_url": endpoint.console_url}, f"endpoint {endpoint.name}: {status}")
    return 0


@_handler
def cmd_translate(args: argparse.Namespace) -> int:
    sentences = _read_sentences(args)
    if bool(args.endpoint) == bool(args.model_dir):
        raise InputError("translate needs exactly one of --endpoint NAME or --model-dir DIR")
    want_matrix = args.attention or bool(args.attention_plot)
    if args.model_dir:
        from ..localtranslate import CHUNK_SENTENCES, translate_local
        from ..progress import StatusLine

        extra = {"json_output": True} if args.attention else {}  # json_output adds the matrices
        status = StatusLine("translating", enabled=not args.json and len(sentences) > CHUNK_SENTENCES)
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-9)
            status.update(f"{done:,}/{total:,} sentences, {rate:,.0f}/s")

        try:
            local = translate_local(sentences, args.model_dir, beam_size=args.beam_size,
                                    attention_plot=args.attention_plot, progress=progress, **extra)
        finally:
            status.close()
        results = [TranslationResult(target=r["target"], matrix=r.get("matrix")) for r in local]
    else:
        if args.beam_size is not None:
            logger.warning("--beam-size applies to --model-dir only; the endpoint uses its trained beam_size")
        sess = _session(args)
        endpoint = sess.endpoint(args.endpoint, vocab_dir=args.vocab_dir)
        content_type = RECORDIO if args.content_type == "recordio" else JSON
        results = endpoint.translate(sentences, attention=want_matrix, content_type=content_type)
        if args.attention_plot:
            from ..plot import save_attention_heatmap

            first = results[0]
            if first.matrix is None:
                raise AWSOperationError(f"endpoint {args.endpoint} returned no attention matrix; is it the "
                                        "s2s-aws algorithm (or the built-in seq2seq)?")
            # the matrix has one column per source token the model read (its first max_seq_len_source)
            used = sentences[0].split()[:len(first.matrix[0])] if first.matrix else sentences[0].split()
            save_attention_heatmap(used, first.target.split(), first.matrix, args.attention_plot)
    out = []
    for src, r in zip(sentences, results):
        item: dict[str, Any] = {"source": src, "target": r.target}
        if want_matrix and r.matrix is not None:
            item["matrix"] = r.matrix
        out.append(item)
    data: dict[str, Any] = {"ok": True, "translations": out}
    if args.attention_plot:
        data["attention_plot"] = args.attention_plot
    _emit(args, data, "\n".join(item["target"] for item in out))
    if args.attention_plot and not args.json:
        print(f"attention heat-map written to {args.attention_plot}", file=sys.stderr)
    return 0


@_handler
def cmd_update_endpoint(args: argparse.Namespace) -> int:
    from ..hosting import blue_green

    sess = _session(args)
    endpoint = sess.endpoint(args.name)
    deployment = None
    if args.blue_green or args.rollback_alarm:
        deployment = blue_green(traffic=args.blue_green or "ALL_AT_ONCE", step_percent=args.step_percent,
                                wait_interval_s=args.wait_interval, rollback_alarms=args.rollback_alarm or ())
    kwargs: dict[str, Any] = dict(instance_type=args.instance_type, initial_instance_count=args.instance_count,
                                  deployment_config=deployment, wait=not args.no_wait, timeout=args.timeout,
                                  delete_previous=args.delete_previous)
    if args.job:
        job = sess.attach(args.job)
        config = endpoint.update(job.model_artifacts, image_uri=args.image_uri or job.image_uri,
                                 vocab_uri=job.vocab_uri, **kwargs)
    elif args.model_data:
        config = endpoint.update(args.model_data, image_uri=args.image_uri, **kwargs)
    elif args.model_name:
        config = endpoint.update(model_name=args.model_name, **kwargs)
    else:
        raise InputError("update-endpoint needs --job NAME, --model-data s3://.../model.tar.gz or --model-name NAME")
    status = endpoint.status
    _emit(args, {"ok": True, "endpoint_name": endpoint.name, "endpoint_config": config, "status": status},
          f"endpoint {endpoint.name}: {status} ({config})")
    return 0


def _transform_input(sess: Any, value: str) -> str:
    if value.startswith("s3://"):
        return value
    path = Path(value)
    if not path.is_file():
        raise InputError(f"--input {value!r} is neither an s3:// prefix nor a local file")
    from ..transform import upload_jsonlines

    sentences = []
    for n, line in json_lines(path.read_text(encoding="utf-8")):
        if line.lstrip().startswith("{"):
            try:
                sentences.append(json.loads(line)["source"])
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"{path}:{n}: expected {{\"source\": \"...\"}} or plain text") from e
        else:
            sentences.append(line)
    return upload_jsonlines(sess, sentences)


@_handler
def cmd_transform(args: argparse.Namespace) -> int:
    sess = _session(args)
    input_uri = _transform_input(sess, args.input)
    kwargs = dict(output_uri=args.output, instance_type=args.instance_type, instance_count=args.instance_count,
                  job_name=args.job_name)
    if args.job:
        tj = sess.attach(args.job).transform(input_uri, **kwargs)
    elif args.model_name:
        tj = sess.transform(args.model_name, input_uri, **kwargs)
    else:
        raise InputError("transform needs --job NAME (a Completed training job) or --model-name NAME")
    out: dict[str, Any] = {"ok": True, "job_name": tj.name, "input": input_uri, "run_id": sess.run_id}
    if args.no_wait:
        out["status"] = tj.status
        _emit(args, out, f"transform job {tj.name}: {out['status']}")
        return 0
    tj.wait(timeout=args.timeout)
    out.update(status="Completed", output=tj.output_uri)
    if args.results:
        out["results"] = tj.results()
    _emit(args, out, "\n".join([f"transform job {tj.name}: Completed -> {tj.output_uri}"]
                               + [str(r.get("target", r)) for r in out.get("results", [])]))
    return 0


@_handler
def cmd_cleanup(args: argparse.Namespace) -> int:
    from ..cleanup import cleanup

    sess = _session(args)
    run_id = _setting(args, "run_id")
    resources = cleanup(sess, run_id=run_id, older_than=args.older_than, dry_run=args.dry_run, kinds=args.kind)
    verb = "would " if args.dry_run else ""
    lines = [f"{verb}{r.action} {r.kind} {r.name} (run {r.run_id})" for r in resources] or ["nothing to clean up"]
    _emit(args, {"ok": True, "dry_run": args.dry_run, "resources": [r.as_dict() for r in resources]},
          "\n".join(lines))
    return 0


@_handler
def cmd_delete_endpoint(args: argparse.Namespace) -> int:
    sess = _session(args)
    deleted = sess.endpoint(args.name).delete(wait=args.wait)
    _emit(args, {"ok": True, "deleted": deleted}, "\n".join(f"deleted {d}" for d in deleted) or "nothing to delete")
    return 0


# ---------------------------------------------------------------- parser
def _aws_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("AWS settings (flags override environment variables)")
    g.add_argument("--bucket", help="S3 bucket (env S2S_BUCKET)")
    g.add_argument("--prefix", help="S3 key prefix (env S2S_PREFIX)")
    g.add_argument("--role-arn", dest="role_arn", help="SageMaker execution role ARN (env S2S_ROLE_ARN)")
    g.add_argument("--run-id", dest="run_id", help="value of the s2s-aws:run tag (env S2S_RUN_ID; default: new)")
    return p


def _wait_options(p: argparse.ArgumentParser, default_timeout: float | None = None) -> None:
    p.add_argument("--timeout", type=float, default=default_timeout, help="seconds to wait before giving up "
                   "(the resource keeps running)")


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the AWS commands to the ``s2s-aws`` parser.

    ``parents`` carries the global options (suppressed defaults, so they work on either side of the command).
    """
    aws = [*parents, _aws_options()]

    p = subparsers.add_parser("upload", parents=aws, help="validate and upload a prep dir as the three channels")
    p.add_argument("directory", help="prep directory: train.rec, val.rec, vocab.src.json, vocab.trg.json")
    p.add_argument("--force", action="store_true", help="upload even unchanged files")
    p.set_defaults(func=cmd_upload)

    p = subparsers.add_parser("train", parents=aws, help="start a training job")
    defaults = TrainingConfig()
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="prep directory to upload first")
    src.add_argument("--channels-prefix", help="s3:// prefix holding train/, validation/, vocab/ "
                     "(default: s3://BUCKET/PREFIX/)")
    p.add_argument("--hp", action="append", metavar="NAME=VALUE", help="hyperparameter (repeatable)")
    p.add_argument("--instance-type", default=defaults.instance_type)
    p.add_argument("--instance-count", type=int, default=defaults.instance_count)
    p.add_argument("--volume-size", type=int, default=defaults.volume_size_gb, help="GB of EBS volume")
    p.add_argument("--max-runtime", type=int, default=defaults.max_runtime_s, help="seconds")
    p.add_argument("--spot", action="store_true", help="managed spot training (checkpoints to S3)")
    p.add_argument("--max-wait", type=int, help="seconds to wait for spot capacity + runtime (>= --max-runtime)")
    p.add_argument("--checkpoint-s3-uri")
    p.add_argument("--output-path", help="s3:// prefix for model.tar.gz (default s3://BUCKET/PREFIX/output/)")
    p.add_argument("--subnet", action="append", help="VPC subnet id (repeatable)")
    p.add_argument("--security-group", action="append", help="VPC security group id (repeatable)")
    p.add_argument("--network-isolation", action="store_true")
    p.add_argument("--volume-kms-key")
    p.add_argument("--output-kms-key")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help="extra tag (repeatable)")
    p.add_argument("--image-uri", help="algorithm image (env S2S_IMAGE_URI; default: s2s-aws image in your ECR)")
    p.add_argument("--builtin", action="store_true", help="use the AWS built-in seq2seq image")
    p.add_argument("--job-name", help="exact job name (default: <base-name>-YYYYmmdd-HHMMSS-xxxx)")
    p.add_argument("--base-name", default=defaults.base_job_name)
    p.add_argument("--wait", action="store_true", help="wait until the job ends (exit 1 if it fails)")
    p.add_argument("--logs", action="store_true", help="stream the job's CloudWatch logs (implies --wait)")
    _wait_options(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("status", parents=aws, help="show a training job (exit 1 if it failed)")
    p.add_argument("name")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--logs", action="store_true", help="stream logs while waiting")
    p.add_argument("--allow-stopped", action="store_true", help="a Stopped job is not a failure")
    _wait_options(p)
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser("logs", parents=aws, help="print a training job's CloudWatch logs")
    p.add_argument("name")
    p.add_argument("--follow", "-f", action="store_true", help="keep streaming until the job ends")
    _wait_options(p)
    p.set_defaults(func=cmd_logs)

    p = subparsers.add_parser("stop", parents=aws, help="stop a training job")
    p.add_argument("name")
    p.add_argument("--wait", action="store_true", help="wait until it is Stopped")
    _wait_options(p)
    p.set_defaults(func=cmd_stop)

    p = subparsers.add_parser("deploy", parents=aws, help="host a model on an endpoint (waits until InService)")
    p.add_argument("--job", help="Completed training job whose model to host")
    p.add_argument("--model-data", help="s3://.../model.tar.gz (instead of --job)")
    p.add_argument("--image-uri", help="serving image with --model-data (env S2S_IMAGE_URI)")
    p.add_argument("--vocab-uri", help="S3 vocab channel (for RecordIO translation) with --model-data")
    p.add_argument("--endpoint-name", help="endpoint to create, or to update if it exists")
    p.add_argument("--instance-type", default="ml.m5.xlarge")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--min-instances", type=int, default=1, help="autoscaling minimum")
    p.add_argument("--max-instances", type=int, help="enable autoscaling up to this many instances")
    p.add_argument("--target-invocations", type=float, default=100.0,
                   help="autoscaling target: invocations per instance per minute")
    p.add_argument("--no-wait", action="store_true")
    _wait_options(p, 3600.0)
    p.set_defaults(func=cmd_deploy)

    p = subparsers.add_parser("translate", parents=aws, help="translate sentences (endpoint or local model)")
    p.add_argument("sentences", nargs="*", help="tokenized sentences (default: stdin, one per line)")
    p.add_argument("--endpoint", help="endpoint name")
    p.add_argument("--model-dir", help="local model directory (decode on this machine)")
    p.add_argument("--attention", action="store_true", help="include attention matrices (JSON output)")
    p.add_argument("--attention-plot", metavar="PNG", help="write the first sentence's attention heat-map")
    p.add_argument("--beam-size", type=int, help="beam size (--model-dir)")
    p.add_argument("--content-type", choices=("json", "recordio"), default="json", help="endpoint request format")
    p.add_argument("--vocab-dir", help="local vocab/prep dir for --content-type recordio")
    p.set_defaults(func=cmd_translate)

    p = subparsers.add_parser("update-endpoint", parents=aws, help="point an endpoint at a new model")
    p.add_argument("name", help="endpoint name")
    p.add_argument("--job", help="Completed training job whose model to serve")
    p.add_argument("--model-data", help="s3://.../model.tar.gz")
    p.add_argument("--model-name", help="existing SageMaker model")
    p.add_argument("--image-uri")
    p.add_argument("--instance-type", help="default: the current variant's")
    p.add_argument("--instance-count", type=int)
    p.add_argument("--blue-green", choices=("ALL_AT_ONCE", "CANARY", "LINEAR"), help="blue/green traffic shifting")
    p.add_argument("--step-percent", type=int, default=10, help="CANARY/LINEAR step (capacity percent)")
    p.add_argument("--wait-interval", type=int, default=300, help="baking seconds between steps")
    p.add_argument("--rollback-alarm", action="append", help="CloudWatch alarm that triggers auto-rollback")
    p.add_argument("--delete-previous", action="store_true", help="delete the old config and model afterwards")
    p.add_argument("--no-wait", action="store_true")
    _wait_options(p, 3600.0)
    p.set_defaults(func=cmd_update_endpoint)

    p = subparsers.add_parser("transform", parents=aws, help="batch transform jsonlines with a model")
    p.add_argument("--job", help="Completed training job whose model to use")
    p.add_argument("--model-name", help="existing SageMaker model")
    p.add_argument("--input", required=True, help="s3:// prefix of jsonlines files, or a local text/jsonlines file")
    p.add_argument("--output", help="s3:// output prefix (default under s3://BUCKET/PREFIX/transform/)")
    p.add_argument("--instance-type", default="ml.m5.xlarge")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--job-name")
    p.add_argument("--results", action="store_true", help="print the output lines")
    p.add_argument("--no-wait", action="store_true")
    _wait_options(p)
    p.set_defaults(func=cmd_transform)

    p = subparsers.add_parser("cleanup", parents=aws, help="remove resources tagged by a run, or older than an age")
    p.add_argument("--older-than", help="age: 30m, 12h, 7d, 2w (only s2s-aws-tagged resources)")
    p.add_argument("--kind", action="append", choices=KINDS, help="limit to these kinds (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; change nothing")
    p.set_defaults(func=cmd_cleanup)

    p = subparsers.add_parser("delete-endpoint", parents=aws, help="delete an endpoint, its config and models")
    p.add_argument("name")
    p.add_argument("--wait", action="store_true")
    p.set_defaults(func=cmd_delete_endpoint)
