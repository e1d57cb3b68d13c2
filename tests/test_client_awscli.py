"""The real AWS CLI (v1, from the cached client venv) against a running local stack, unmodified: only
the variables `s2s-aws local up` prints (issue 13 item 3, the AWS CLI journey).

s3 cp/ls, sagemaker create/list/describe/wait for a training job, logs filter-log-events with
--log-stream-name-prefix (only that job's events), model → endpoint config → endpoint,
sagemaker-runtime invoke-endpoint, delete. Jobs run the torch-free fake algorithm, so what is
exercised is the CLI against our API, not the model.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from client_venvs import client_venv

from s2s_aws.local import LocalStack

from local_utils import FAKE_SERVE, FAKE_TRAIN

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def aws():
    return client_venv("sdk-v2") / "aws"  # awscli pinned in tests/clients/sdk-v2.requirements.txt, cached


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    st = LocalStack(tmp_path_factory.mktemp("state"), train_command=FAKE_TRAIN, serve_command=FAKE_SERVE,
                    stop_grace_s=3)
    yield st
    st.stop()


@pytest.fixture(scope="module")
def cli(aws, stack, tmp_path_factory):
    """``cli("s3", "ls", ...)`` runs the AWS CLI with only the stack's variables (no ~/.aws, no other AWS_*);
    returns stdout, parsed as JSON when it is JSON."""
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(stack.environ())
    env["HOME"] = str(home)

    def run(*args: str, cwd=None):
        r = subprocess.run([str(aws), *args], env=env, cwd=cwd or home, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"aws {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
        try:
            return json.loads(r.stdout) if r.stdout.strip() else None
        except ValueError:
            return r.stdout
    run.env = env
    run.home = home
    return run


def _until(cli, args, done, what):
    for _ in range(240):
        out = cli(*args)
        if done(out):
            return out
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen; last answer: {out}")


def _training_job(cli, name, bucket, role, seconds="0"):
    request = {
        "TrainingJobName": name, "RoleArn": role,
        "AlgorithmSpecification": {"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/s2s-aws-seq2seq:latest",
                                   "TrainingInputMode": "File"},
        "HyperParameters": {"fake_seconds": seconds},
        "InputDataConfig": [{"ChannelName": c, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/cli/{c}/"}}} for c in ("train", "validation", "vocab")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/cli/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    path = cli.home / f"{name}.json"
    path.write_text(json.dumps(request))
    return cli("sagemaker", "create-training-job", "--cli-input-json", f"file://{path}")


def test_aws_cli_journey(cli, stack):
    env = stack.environ()
    bucket, role = env["S2S_BUCKET"], env["S2S_ROLE_ARN"]
    # s3: the bucket local up made is there; cp up, ls, cp down
    assert bucket in cli("s3", "ls")
    for c in ("train", "validation", "vocab"):
        (cli.home / f"{c}.bin").write_bytes(b"fake " + c.encode())
        cli("s3", "cp", str(cli.home / f"{c}.bin"), f"s3://{bucket}/cli/{c}/{c}.bin")
    listing = cli("s3", "ls", "--recursive", f"s3://{bucket}/cli/")
    assert all(f"cli/{c}/{c}.bin" in listing for c in ("train", "validation", "vocab")), listing
    cli("s3", "cp", f"s3://{bucket}/cli/vocab/vocab.bin", str(cli.home / "back.bin"))
    assert (cli.home / "back.bin").read_bytes() == b"fake vocab"

    # sagemaker: create, list, wait, describe
    arn = _training_job(cli, "cli-job", bucket, role)["TrainingJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:training-job/cli-job"
    _training_job(cli, "cli-other", bucket, role)
    names = [j["TrainingJobName"] for j in cli("sagemaker", "list-training-jobs")["TrainingJobSummaries"]]
    assert {"cli-job", "cli-other"} <= set(names)
    # the CLI's waiter polls every 120 s: first let the job finish, then `wait` must see it as done
    _until(cli, ("sagemaker", "describe-training-job", "--training-job-name", "cli-job"),
           lambda d: d["TrainingJobStatus"] != "InProgress", "the training job finishing")
    cli("sagemaker", "wait", "training-job-completed-or-stopped", "--training-job-name", "cli-job")
    job = cli("sagemaker", "describe-training-job", "--training-job-name", "cli-job")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["OutputDataConfig"]["KmsKeyId"] == ""
    assert {m["MetricName"] for m in job["FinalMetricDataList"]} == {"train:perplexity", "validation:bleu"}
    model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_data == f"s3://{bucket}/cli/output/cli-job/output/model.tar.gz"
    assert "model.tar.gz" in cli("s3", "ls", model_data)
    completed = cli("sagemaker", "list-training-jobs", "--status-equals", "Completed", "--name-contains", "cli-job")
    assert [j["TrainingJobName"] for j in completed["TrainingJobSummaries"]] == ["cli-job"]

    # logs: the stream-name prefix keeps to this job's streams
    _until(cli, ("sagemaker", "describe-training-job", "--training-job-name", "cli-other"),
           lambda d: d["TrainingJobStatus"] != "InProgress", "the second training job finishing")
    events = cli("logs", "filter-log-events", "--log-group-name", "/aws/sagemaker/TrainingJobs",
                 "--log-stream-name-prefix", "cli-job/")["events"]
    assert events and {e["logStreamName"].split("/")[0] for e in events} == {"cli-job"}
    assert any("#metric validation:bleu=" in e["message"] for e in events)
    every = cli("logs", "filter-log-events", "--log-group-name", "/aws/sagemaker/TrainingJobs")["events"]
    assert {"cli-job", "cli-other"} <= {e["logStreamName"].split("/")[0] for e in every}

    # hosting: model, endpoint config, endpoint, invoke, delete
    cli("sagemaker", "create-model", "--model-name", "cli-model", "--execution-role-arn", role,
        "--primary-container", json.dumps({"Image": job["AlgorithmSpecification"]["TrainingImage"],
                                           "ModelDataUrl": model_data}))
    cli("sagemaker", "create-endpoint-config", "--endpoint-config-name", "cli-config", "--production-variants",
        json.dumps([{"VariantName": "AllTraffic", "ModelName": "cli-model", "InstanceType": "ml.m5.large",
                     "InitialInstanceCount": 1}]))
    cli("sagemaker", "create-endpoint", "--endpoint-name", "cli-ep", "--endpoint-config-name", "cli-config")
    _until(cli, ("sagemaker", "describe-endpoint", "--endpoint-name", "cli-ep"),
           lambda d: d["EndpointStatus"] != "Creating", "the endpoint coming up")
    cli("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", "cli-ep")
    ep = cli("sagemaker", "describe-endpoint", "--endpoint-name", "cli-ep")
    assert ep["EndpointStatus"] == "InService"
    assert ep["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    (cli.home / "request.json").write_text(json.dumps({"instances": [{"data": "one two three"}]}))
    meta = cli("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "cli-ep", "--content-type",
               "application/json", "--accept", "application/json", "--body", "fileb://request.json", "answer.json")
    assert meta["ContentType"] == "application/json" and meta["InvokedProductionVariant"] == "AllTraffic"
    assert json.loads((cli.home / "answer.json").read_text())["predictions"][0]["target"] == "three two one"
    cli("sagemaker", "delete-endpoint", "--endpoint-name", "cli-ep")
    _until(cli, ("sagemaker", "list-endpoints"),
           lambda d: "cli-ep" not in [e["EndpointName"] for e in d["Endpoints"]], "the endpoint going away")
    cli("sagemaker", "delete-endpoint-config", "--endpoint-config-name", "cli-config")
    cli("sagemaker", "delete-model", "--model-name", "cli-model")
    assert "cli-model" not in [m["ModelName"] for m in cli("sagemaker", "list-models")["Models"]]
