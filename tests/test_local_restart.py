"""`s2s-aws local up` in a subprocess: prints the environment, stops cleanly on SIGTERM, and its
state (resources, S3 objects, log events, endpoints) survives a restart."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from local_utils import FAST, ROLE, model_endpoint_and_running_job

from s2s_aws.local import LocalStack

pytestmark = pytest.mark.slow

PY = sys.executable


def _start(state_dir):
    env = dict(os.environ)
    env["S2S_LOCAL_TRAIN_COMMAND"] = f"{PY} {Path(__file__).with_name('fake_algorithm.py')} train"
    env["S2S_LOCAL_SERVE_COMMAND"] = f"{PY} {Path(__file__).with_name('fake_algorithm.py')} serve --model-dir {{model_dir}} --port {{port}}"
    proc = subprocess.Popen([PY, "-m", "s2s_aws", "--json", "local", "up", "--state-dir", str(state_dir)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise AssertionError(f"local up printed nothing; stderr: {proc.stderr.read()}")
    info = json.loads(line)
    return proc, info


def _clients(info):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    url = info["endpoint_url"]
    return (session.client("s3", endpoint_url=url), session.client("sagemaker", endpoint_url=url),
            session.client("sagemaker-runtime", endpoint_url=url), session.client("logs", endpoint_url=url))


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_local_up_restart_keeps_state(tmp_path):
    state = tmp_path / "state"
    proc, info = _start(state)
    try:
        env = info["environment"]
        assert env["AWS_ENDPOINT_URL"] == info["endpoint_url"].rstrip("/")
        assert env["AWS_ENDPOINT_URL_SAGEMAKER"] == env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == env["AWS_ENDPOINT_URL"]
        s3, sm, rt, logs = _clients(info)
        model_endpoint_and_running_job(s3, sm, "restart-bucket", version="5")
        children = _children_of(proc.pid)
        assert len(children) >= 2  # the endpoint's server and the training program
    except BaseException:
        proc.kill()
        raise
    _stop(proc)
    for pid in children:  # Ctrl-C/SIGTERM stopped every child process
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"

    proc, info = _start(state)
    try:
        s3, sm, rt, logs = _clients(info)
        assert s3.get_object(Bucket="restart-bucket", Key="d/train/f.bin")["Body"].read() == b"x"
        assert s3.head_object(Bucket="restart-bucket", Key="out/model-job/output/model.tar.gz")["ContentLength"] > 0
        assert sm.describe_training_job(TrainingJobName="model-job")["TrainingJobStatus"] == "Completed"
        d = sm.describe_training_job(TrainingJobName="running-job")
        assert d["TrainingJobStatus"] == "Failed"
        assert "re-run it" in d["FailureReason"]
        streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                            logStreamNamePrefix="model-job/")["logStreams"]
        events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                     logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"]
        assert any("training done" in e["message"] for e in events)
        assert sm.describe_model(ModelName="m")["ModelName"] == "m"
        assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] in ("SystemUpdating", "InService")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=FAST)
        r = rt.invoke_endpoint(EndpointName="ep", ContentType="application/json",
                               Body=json.dumps({"instances": [{"data": "x y"}]}))
        assert json.loads(r["Body"].read())["predictions"][0] == {"target": "y x", "model": "5"}
        sm.delete_endpoint(EndpointName="ep")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="ep", WaiterConfig=FAST)
    finally:
        _stop(proc)


def test_job_left_in_progress_by_a_crash_is_failed_on_start(tmp_path):
    """A record still InProgress (the stack was killed) is marked Failed with the restart reason."""
    folder = tmp_path / "resources" / "training-job"
    folder.mkdir(parents=True)
    rec = {"TrainingJobName": "crashed", "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/crashed",
           "_Arn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/crashed", "TrainingJobStatus": "InProgress",
           "SecondaryStatus": "Training", "CreationTime": time.time() - 60, "RoleArn": ROLE,
           "AlgorithmSpecification": {"TrainingImage": "x", "TrainingInputMode": "File"},
           "OutputDataConfig": {"S3OutputPath": "s3://b/o"}, "StoppingCondition": {"MaxRuntimeInSeconds": 60},
           "SecondaryStatusTransitions": [{"Status": "Training", "StartTime": time.time() - 50}]}
    (folder / "crashed.json").write_text(json.dumps(rec))
    with LocalStack(tmp_path) as stack:
        d = stack.client("sagemaker").describe_training_job(TrainingJobName="crashed")
    assert d["TrainingJobStatus"] == "Failed"
    assert d["FailureReason"] == "the local control plane restarted while the job ran; re-run it"
    assert d["SecondaryStatusTransitions"][-1]["Status"] == "Failed"
    with pytest.raises(RuntimeError, match="not running"):
        stack.endpoint_url  # noqa: B018 - a stopped stack has no URL
