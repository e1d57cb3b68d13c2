"""Training and batch transform jobs of the local stack, run as child processes.

A training job gets an ``/opt/ml``-style tree under ``jobs/training-job/<name>/ml``: its channels
copied from the local S3, the three config JSON files, then the train program runs with
``S2S_ML_ROOT`` pointing there. Its output goes to CloudWatch Logs (``/aws/sagemaker/TrainingJobs``),
metric lines are matched with the job's ``MetricDefinitions``, and the model folder is tarred to
``<S3OutputPath>/<job>/output/model.tar.gz``.
"""
from __future__ import annotations

import collections
import logging
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from ..contract.layout import MODEL_ARCHIVE
from ..contract.model_dir import pack_model_dir
from .endpoints import ServeFailed, ServeProcess, fetch_model
from .state import atomic_write_json
from .support import Context, LogShipper, MetricPublisher, child_env, download_prefix, now, parse_s3_uri, pump_output, start_process, terminate

logger = logging.getLogger(__name__)

RESTART_REASON = "the local control plane restarted while the job ran; re-run it"
SHUTDOWN_REASON = "the local control plane stopped while the job ran; re-run it"


class _Stopped(Exception):
    pass


class TrainingRunner:
    """Runs one training job on a background thread; :meth:`stop` asks it to stop."""

    def __init__(self, ctx: Context, name: str):
        self.ctx = ctx
        self.name = name
        self.workdir = ctx.root / "jobs" / "training-job" / name
        self.ml = self.workdir / "ml"
        self._stop = threading.Event()
        self._proc = None
        self._timed_out = False
        self._abort_reason: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"training-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """StopTrainingJob: SIGTERM the train program, SIGKILL after the grace period; ends Stopped."""
        self._stop.set()
        proc = self._proc
        if proc is not None:
            threading.Thread(target=terminate, args=(proc, self.ctx.stop_grace_s), daemon=True).start()

    def abort(self, reason: str) -> None:
        """The stack is stopping: end the train program; the job ends Failed with ``reason``."""
        self._abort_reason = reason
        self.stop()

    # ------------------------------------------------------------------ status helpers
    def _record(self) -> dict:
        rec = self.ctx.registry.get("training-job", self.name)
        if rec is None:
            raise _Stopped()
        return rec

    def _secondary(self, status: str, message: str, **changes: Any) -> None:
        rec = self._record()
        t = now()
        transitions = rec.get("SecondaryStatusTransitions", [])
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = t
        transitions.append({"Status": status, "StartTime": t, "StatusMessage": message})
        self.ctx.registry.update("training-job", self.name, {
            "SecondaryStatus": status, "SecondaryStatusTransitions": transitions, "LastModifiedTime": t, **changes})

    def _finish(self, status: str, secondary: str, message: str, **changes: Any) -> None:
        rec = self._record()
        start = rec.get("TrainingStartTime", rec["CreationTime"])
        end = now()
        self._secondary(secondary, message, TrainingJobStatus=status, TrainingEndTime=end,
                        TrainingTimeInSeconds=max(1, int(end - start)),
                        BillableTimeInSeconds=max(1, int(end - start)), **changes)
        transitions = self._record()["SecondaryStatusTransitions"]
        transitions[-1]["EndTime"] = end
        self.ctx.registry.update("training-job", self.name, {"SecondaryStatusTransitions": transitions})

    # ------------------------------------------------------------------ the job
    def _run(self) -> None:
        shipper = None
        try:
            rec = self._record()
            stream = f"{self.name}/algo-1-{int(time.time())}"
            shipper = LogShipper(self.ctx.logs, "/aws/sagemaker/TrainingJobs", stream,
                                 local_file=self.workdir / "output.log", echo=self.ctx.echo)
            self._prepare(rec, shipper)
            self._train(rec, shipper)
        except _Stopped:
            pass
        except Exception as e:  # anything unexpected still ends the job with a reason
            logger.exception("training job %s failed in the local control plane", self.name)
            try:
                self._finish("Failed", "Failed", "Training job failed", FailureReason=f"ClientError: {e}"[:1024])
            except _Stopped:
                pass
        finally:
            if shipper is not None:
                shipper.close()

    def _prepare(self, rec: dict, shipper: LogShipper) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir / "ml", ignore_errors=True)
        for sub in ("input/config", "model", "output", "checkpoints"):
            (self.ml / sub).mkdir(parents=True, exist_ok=True)
        self._secondary("Downloading", "Downloading input data", TrainingStartTime=now())
        input_config = {}
        for channel in rec.get("InputDataConfig", []):
            cname = channel["ChannelName"]
            source = channel.get("DataSource", {}).get("S3DataSource")
            if self._stop.is_set():
                return
            if source is None:
                raise ValueError(f"channel {cname!r}: only S3DataSource is supported locally")
            try:
                files = download_prefix(self.ctx.s3, source["S3Uri"], self.ml / "input" / "data" / cname)
            except FileNotFoundError as e:
                self._finish("Failed", "Failed", "Training job failed",
                             FailureReason=f"ClientError: Data download failed: {e} (channel {cname!r})")
                raise _Stopped() from e
            shipper.write(f"[local] channel {cname}: {len(files)} file(s) from {source['S3Uri']}")
            input_config[cname] = {
                "ContentType": channel.get("ContentType", "application/octet-stream"),
                "TrainingInputMode": channel.get("InputMode") or rec["AlgorithmSpecification"].get("TrainingInputMode", "File"),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
        cfg = self.ml / "input" / "config"
        atomic_write_json(cfg / "hyperparameters.json", rec.get("HyperParameters", {}))
        atomic_write_json(cfg / "inputdataconfig.json", input_config)
        atomic_write_json(cfg / "resourceconfig.json",
                          {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"})

    def _train(self, rec: dict, shipper: LogShipper) -> None:
        if self._abort_reason:
            self._finish("Failed", "Failed", "Training job failed", FailureReason=self._abort_reason)
            return
        if self._stop.is_set():
            self._finish("Stopped", "Stopped", "Training job stopped before it started")
            return
        self._secondary("Training", "Training image download completed. Training in progress.")
        metric_defs = [(m["Name"], re.compile(m["Regex"]))
                       for m in rec["AlgorithmSpecification"].get("MetricDefinitions", [])]
        final: dict[str, dict] = {}
        tail: collections.deque[str] = collections.deque(maxlen=3)
        publisher = (MetricPublisher(self.ctx.cloudwatch, self.name, local_file=self.workdir / "metrics.jsonl")
                     if metric_defs else None)

        def sink(line: str) -> None:
            shipper.write(line)
            if line.strip():
                tail.append(line.strip())
            for mname, regex in metric_defs:
                m = regex.search(line)
                if m:
                    try:
                        value = float(m.group(1) if m.groups() else m.group(0))
                    except (ValueError, IndexError):
                        continue
                    t = now()
                    final[mname] = {"MetricName": mname, "Value": value, "Timestamp": t}
                    if publisher is not None:
                        publisher.put(mname, value, t)

        env = child_env({**rec.get("Environment", {}), "S2S_ML_ROOT": str(self.ml),
                         "TRAINING_JOB_NAME": self.name, "TRAINING_JOB_ARN": rec["TrainingJobArn"]})
        self._proc = proc = start_process(self.ctx.train_command, env, cwd=self.workdir)
        if self._stop.is_set():  # a stop that raced with the start
            self.stop()
        pump = pump_output(proc, sink)
        max_runtime = rec.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        try:
            code = proc.wait(timeout=max_runtime)
        except Exception:
            self._timed_out = True
            code = terminate(proc, self.ctx.stop_grace_s)
        pump.join(timeout=10)
        shipper.flush()
        if publisher is not None:
            publisher.close()
        metrics = {"FinalMetricDataList": list(final.values())} if final else {}
        if self._abort_reason:
            self._finish("Failed", "Failed", "Training job failed", FailureReason=self._abort_reason, **metrics)
            return
        if self._stop.is_set() or self._timed_out:
            self._upload(rec, allow_empty=False)
            reason = "MaxRuntimeExceeded" if self._timed_out else "Stopped"
            self._finish("Stopped", reason, "Training job stopped", **metrics, **self._artifacts(rec))
            return
        if code != 0:
            failure = self.ml / "output" / "failure"
            text = failure.read_text("utf-8", "replace").strip() if failure.exists() else ""
            if not text:
                text = (f"the training program exited with status {code} and wrote no reason to "
                        f"output/failure; its last output: {' | '.join(tail) or '(none)'}; full log in the "
                        f"stream /aws/sagemaker/TrainingJobs/{shipper.stream}")
            self._finish("Failed", "Failed", "Training job failed",
                         FailureReason=f"AlgorithmError: {text}"[:1024], **metrics)
            return
        self._secondary("Uploading", "Uploading generated training model", **metrics)
        self._upload(rec, allow_empty=True)
        self._finish("Completed", "Completed", "Training job completed", **metrics, **self._artifacts(rec))

    @staticmethod
    def _uncompressed(rec: dict) -> bool:
        return str(rec["OutputDataConfig"].get("CompressionType", "GZIP")).upper() == "NONE"

    def _model_uri(self, rec: dict) -> str:
        """``<S3OutputPath>/<job>/output/model.tar.gz``, or the ``.../output/model/`` prefix when
        OutputDataConfig.CompressionType is NONE (SageMaker then uploads the files as they are)."""
        base = f"{rec['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{self.name}/output"
        return f"{base}/model/" if self._uncompressed(rec) else f"{base}/{MODEL_ARCHIVE}"

    def _artifacts(self, rec: dict) -> dict:
        if not (self.workdir / f"{MODEL_ARCHIVE}.uploaded").exists():
            return {}
        return {"ModelArtifacts": {"S3ModelArtifacts": self._model_uri(rec)}}

    def _upload(self, rec: dict, allow_empty: bool) -> None:
        model_dir = self.ml / "model"
        if not allow_empty and not any(model_dir.iterdir()):
            return
        bucket, key = parse_s3_uri(self._model_uri(rec))
        if self._uncompressed(rec):
            for item in sorted(model_dir.rglob("*")):
                if item.is_file():
                    self.ctx.s3.upload_file(str(item), bucket, key + item.relative_to(model_dir).as_posix())
        else:
            archive = pack_model_dir(model_dir, self.workdir / MODEL_ARCHIVE)
            self.ctx.s3.upload_file(str(archive), bucket, key)
            archive.unlink()
        (self.workdir / f"{MODEL_ARCHIVE}.uploaded").touch()


class TransformRunner:
    """Runs one batch transform job: a serve process fed the input files line by line."""

    def __init__(self, ctx: Context, name: str):
        self.ctx = ctx
        self.name = name
        self.workdir = ctx.root / "jobs" / "transform-job" / name
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"transform-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _update(self, **changes: Any) -> None:
        self.ctx.registry.update("transform-job", self.name, changes)

    def _run(self) -> None:
        rec = self.ctx.registry.get("transform-job", self.name)
        if rec is None:
            return
        serve = None
        try:
            self._update(TransformStartTime=now())
            model = self.ctx.registry.get("model", rec["ModelName"])
            if model is None:
                raise ServeFailed(f"the model {rec['ModelName']!r} no longer exists")
            shutil.rmtree(self.workdir, ignore_errors=True)
            fetch_model(self.ctx, model, self.workdir)
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            env = {**(container.get("Environment") or {}), **(rec.get("Environment") or {})}
            serve = ServeProcess(self.ctx, self.workdir, env, "/aws/sagemaker/TransformJobs",
                                 f"{self.name}/local-{int(time.time())}")
            serve.start()
            serve.wait_ready(self._stop)
            inputs = download_prefix(self.ctx.s3, rec["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"],
                                     self.workdir / "input")
            for path in inputs:
                if self._stop.is_set():
                    break
                self._transform_file(rec, serve, path)
            if self._stop.is_set():
                self._update(TransformJobStatus="Stopped", TransformEndTime=now())
            else:
                self._update(TransformJobStatus="Completed", TransformEndTime=now())
        except Exception as e:
            if self._stop.is_set():
                self._update(TransformJobStatus="Stopped", TransformEndTime=now())
            else:
                logger.warning("transform job %s failed: %s", self.name, e)
                self._update(TransformJobStatus="Failed", TransformEndTime=now(), FailureReason=str(e)[:1024])
        finally:
            if serve is not None:
                serve.stop()

    def _transform_file(self, rec: dict, serve: ServeProcess, path: Path) -> None:
        tin, tout = rec["TransformInput"], rec["TransformOutput"]
        content_type = tin.get("ContentType", "application/jsonlines")
        accept = tout.get("Accept") or content_type
        max_bytes = int(rec.get("MaxPayloadInMB", 6)) * 1024 * 1024
        data = path.read_bytes()
        if tin.get("SplitType", "None") == "Line":
            records = [ln for ln in data.split(b"\n") if ln.strip()]
            single = rec.get("BatchStrategy") == "SingleRecord"
            batches: list[list[bytes]] = []
            size = 0
            for r in records:
                if not batches or single or size + len(r) + 1 > max_bytes:
                    batches.append([])
                    size = 0
                batches[-1].append(r)
                size += len(r) + 1
            bodies = [b"\n".join(b) + b"\n" for b in batches]
        else:
            bodies = [data]
        outputs = []
        for body in bodies:
            if self._stop.is_set():
                return
            status, _, out = serve.request("POST", "/invocations", body,
                                           {"Content-Type": content_type, "Accept": accept})
            if status != 200:
                raise RuntimeError(f"the model answered {status} for a request from {path.name}: "
                                   f"{out.decode('utf-8', 'replace')[:500]}")
            outputs.append(out if out.endswith(b"\n") or tout.get("AssembleWith") != "Line" else out + b"\n")
        rel = path.relative_to(self.workdir / "input").as_posix()
        local = self.workdir / "output" / (rel + ".out")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(b"".join(outputs))
        bucket, prefix = parse_s3_uri(tout["S3OutputPath"])
        key = (prefix.rstrip("/") + "/" if prefix else "") + rel + ".out"
        self.ctx.s3.upload_file(str(local), bucket, key)


def republish_metrics(ctx: Context) -> int:
    """Put every training job's saved metric values back into CloudWatch (called at start: moto keeps
    CloudWatch in memory only); returns how many values."""
    count = 0
    for rec in ctx.registry.all("training-job"):
        name = rec["TrainingJobName"]
        saved = ctx.root / "jobs" / "training-job" / name / "metrics.jsonl"
        if saved.exists():
            count += MetricPublisher.republish(ctx.cloudwatch, name, saved)
    return count


def fail_interrupted(ctx: Context) -> None:
    """Mark the jobs that were running when the stack stopped as Failed (called at start)."""
    reg = ctx.registry
    for rec in reg.all("training-job"):
        if rec["TrainingJobStatus"] in ("InProgress", "Stopping"):
            t = now()
            transitions = rec.get("SecondaryStatusTransitions", [])
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1]["EndTime"] = t
            transitions.append({"Status": "Failed", "StartTime": t, "EndTime": t, "StatusMessage": RESTART_REASON})
            reg.update("training-job", rec["TrainingJobName"], {
                "TrainingJobStatus": "Failed", "SecondaryStatus": "Failed", "FailureReason": RESTART_REASON,
                "SecondaryStatusTransitions": transitions, "TrainingEndTime": t, "LastModifiedTime": t})
    for rec in reg.all("transform-job"):
        if rec["TransformJobStatus"] in ("InProgress", "Stopping"):
            reg.update("transform-job", rec["TransformJobName"], {
                "TransformJobStatus": "Failed", "FailureReason": RESTART_REASON, "TransformEndTime": now()})

