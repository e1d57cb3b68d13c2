"""`s2s-aws local up` ready for real clients (issue 13 item 4): it makes the bucket the SageMaker SDKs'
default_bucket() names and an execution role and prints them with the STS workaround, locks its
state folder, keeps timestamps (and IAM roles, and CloudWatch metrics) across a restart, and says in
one line when --state-dir is a file."""
from __future__ import annotations

import datetime
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
from s2s_aws.metrics import METRIC_DEFINITIONS

pytestmark = pytest.mark.slow

PY = sys.executable
BUCKET_NAME = "sagemaker-us-east-1-123456789012"


def _env():
    env = dict(os.environ)
    env["S2S_LOCAL_TRAIN_COMMAND"] = f"{PY} {Path(__file__).with_name('fake_algorithm.py')} train"
    env["S2S_LOCAL_SERVE_COMMAND"] = (f"{PY} {Path(__file__).with_name('fake_algorithm.py')} serve --model-dir {{model_dir}} "
                                      "--port {port}")
    return env


def _up(state_dir, *extra):
    return subprocess.Popen([PY, "-m", "s2s_aws", *extra, "local", "up", "--state-dir", str(state_dir)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()


def _session():
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name="us-east-1")


def test_state_dir_naming_a_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    r = subprocess.run([PY, "-m", "s2s_aws", "local", "up", "--state-dir", str(path)], env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "is a file, not a folder" in r.stderr and str(path) in r.stderr
    r = subprocess.run([PY, "-m", "s2s_aws", "local", "up", "--state-dir", str(path / "below")], env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr


def test_a_second_stack_on_the_same_folder_is_refused_at_once(tmp_path):
    state = tmp_path / "state"
    with LocalStack(state) as first:
        with pytest.raises(Exception, match="in use by another local stack"):
            LocalStack(state)
        r = subprocess.run([PY, "-m", "s2s_aws", "local", "up", "--state-dir", str(state)], env=_env(),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert f"in use by another local stack (pid {os.getpid()})" in r.stderr
        assert r.stderr.strip().count("\n") == 0
        first.client("s3").list_buckets()  # the first one is untouched
    LocalStack(state).stop()  # free again once the first has stopped


def test_local_up_prints_the_bucket_the_role_and_the_sts_workaround(tmp_path):
    proc = _up(tmp_path / "state")
    try:
        lines = []
        while not lines or "Press Ctrl-C" not in lines[-1]:
            line = proc.stdout.readline()
            assert line, f"local up stopped printing; stderr: {proc.stderr.read()}"
            lines.append(line.rstrip("\n"))
        exports = dict(ln[len("export "):].split("=", 1) for ln in lines if ln.startswith("export "))
        assert exports["S2S_BUCKET"] == BUCKET_NAME
        role_arn = exports["S2S_ROLE_ARN"]
        assert role_arn.startswith("arn:aws:iam::123456789012:role/")
        sts = [ln for ln in lines if "STS" in ln]
        assert len(sts) == 1 and "default_bucket=" in sts[0] and "S2S_ROLE_ARN" in sts[0]
        session = _session()
        url = exports["AWS_ENDPOINT_URL"]
        session.client("s3", endpoint_url=url).head_bucket(Bucket=BUCKET_NAME)
        role = session.client("iam", endpoint_url=url).get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]
        assert role["Arn"] == role_arn
        assert "sagemaker.amazonaws.com" in json.dumps(role["AssumeRolePolicyDocument"])
    finally:
        _stop(proc)


def _timestamps(url):
    s = _session()
    s3, sm, logs = (s.client(n, endpoint_url=url) for n in ("s3", "sagemaker", "logs"))
    out = {
        "bucket": [b["CreationDate"] for b in s3.list_buckets()["Buckets"] if b["Name"] == "ts-bucket"],
        "object": s3.head_object(Bucket="ts-bucket", Key="note.txt")["LastModified"],
        "object-listed": s3.list_objects_v2(Bucket="ts-bucket", Prefix="note.txt")["Contents"][0]["LastModified"],
        "group": logs.describe_log_groups(logGroupNamePrefix="/ts/group")["logGroups"][0]["creationTime"],
        "stream": logs.describe_log_streams(logGroupName="/ts/group")["logStreams"][0]["creationTime"],
    }
    job = sm.describe_training_job(TrainingJobName="model-job")
    out["job"] = [job[k] for k in ("CreationTime", "LastModifiedTime", "TrainingStartTime", "TrainingEndTime")]
    ep = sm.describe_endpoint(EndpointName="ep")
    out["endpoint"] = [ep["CreationTime"], ep["LastModifiedTime"]]
    out["model"] = sm.describe_model(ModelName="m")["CreationTime"]
    out["config"] = sm.describe_endpoint_config(EndpointConfigName="c")["CreationTime"]
    iam = s.client("iam", endpoint_url=url)
    role = iam.get_role(RoleName="user-role")["Role"]
    out["role"] = [role["Arn"], role["CreateDate"], role["AssumeRolePolicyDocument"], role.get("Description")]
    out["role-inline"] = iam.get_role_policy(RoleName="user-role", PolicyName="inline")["PolicyDocument"]
    out["role-attached"] = iam.list_attached_role_policies(RoleName="user-role")["AttachedPolicies"]
    mjob = sm.describe_training_job(TrainingJobName="metrics-job")
    out["metrics"] = sorted(
        (p["Timestamp"], p["Average"]) for p in s.client("cloudwatch", endpoint_url=url).get_metric_statistics(
            Namespace="/aws/sagemaker/TrainingJobs", MetricName="train:perplexity",
            Dimensions=[{"Name": "TrainingJobName", "Value": "metrics-job"}],
            StartTime=mjob["TrainingStartTime"] - datetime.timedelta(minutes=1),
            EndTime=mjob["TrainingEndTime"] + datetime.timedelta(minutes=1), Period=60,
            Statistics=["Average"])["Datapoints"])
    return out


def test_timestamps_and_iam_roles_survive_a_restart(tmp_path):
    state = tmp_path / "state"
    proc = _up(state, "--json")
    try:
        url = json.loads(proc.stdout.readline())["endpoint_url"]
        s = _session()
        s3, sm, logs = (s.client(n, endpoint_url=url) for n in ("s3", "sagemaker", "logs"))
        model_endpoint_and_running_job(s3, sm, "ts-bucket", "1")
        sm.stop_training_job(TrainingJobName="running-job")
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="running-job", WaiterConfig=FAST)
        sm.create_training_job(
            TrainingJobName="metrics-job", RoleArn=ROLE, HyperParameters={"fake_seconds": "0.3"},
            AlgorithmSpecification={"TrainingImage": "x", "TrainingInputMode": "File",
                                    "MetricDefinitions": METRIC_DEFINITIONS},
            InputDataConfig=[{"ChannelName": c, "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://ts-bucket/d/{c}"}}} for c in ("train", "validation", "vocab")],
            OutputDataConfig={"S3OutputPath": "s3://ts-bucket/out"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 600})
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="metrics-job", WaiterConfig=FAST)
        s3.put_object(Bucket="ts-bucket", Key="note.txt", Body=b"kept")
        iam = s.client("iam", endpoint_url=url)
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "sagemaker.amazonaws.com"}}]}
        allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.create_role(RoleName="user-role", AssumeRolePolicyDocument=json.dumps(trust), Description="mine")
        iam.put_role_policy(RoleName="user-role", PolicyName="inline", PolicyDocument=json.dumps(allow))
        policy_arn = iam.create_policy(PolicyName="managed", PolicyDocument=json.dumps(allow))["Policy"]["Arn"]
        iam.attach_role_policy(RoleName="user-role", PolicyArn=policy_arn)
        logs.create_log_group(logGroupName="/ts/group")
        logs.create_log_stream(logGroupName="/ts/group", logStreamName="s")
        logs.put_log_events(logGroupName="/ts/group", logStreamName="s",
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": "hello"}])
        before = _timestamps(url)
    finally:
        _stop(proc)
    time.sleep(1.5)  # so that a timestamp re-made at the restart would differ (S3 keeps whole seconds)
    proc = _up(state, "--json")
    try:
        url = json.loads(proc.stdout.readline())["endpoint_url"]
        sm = _session().client("sagemaker", endpoint_url=url)
        sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=FAST)
        after = _timestamps(url)
    finally:
        _stop(proc)
    assert before["metrics"], "the job published no metric values"
    assert after == before
