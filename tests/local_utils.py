"""Helpers shared by the local-mode tests (driven with the fake algorithm)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
FAST = {"Delay": 1, "MaxAttempts": 120}
#: the fake algorithm's train and serve programs (tests/fake_algorithm.py) as LocalStack commands
FAKE_PROGRAM = str(Path(__file__).with_name("fake_algorithm.py"))
FAKE_TRAIN = [sys.executable, FAKE_PROGRAM, "train"]
FAKE_SERVE = [sys.executable, FAKE_PROGRAM, "serve", "--model-dir", "{model_dir}", "--port", "{port}"]


def model_endpoint_and_running_job(s3, sm, bucket: str, version: str) -> None:
    """Leave the stack with a finished job ``model-job`` whose model (fake version ``version``) is
    served on endpoint ``ep``, and a second job ``running-job`` in its Training phase."""
    s3.create_bucket(Bucket=bucket)
    for ch in ("train", "validation", "vocab"):
        s3.put_object(Bucket=bucket, Key=f"d/{ch}/f.bin", Body=b"x")
    channels = [{"ChannelName": c, "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/d/{c}"}}} for c in ("train", "validation", "vocab")]
    common = dict(RoleArn=ROLE, AlgorithmSpecification={"TrainingImage": "x", "TrainingInputMode": "File"},
                  InputDataConfig=channels, OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"},
                  ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                  StoppingCondition={"MaxRuntimeInSeconds": 600})
    sm.create_training_job(TrainingJobName="model-job", HyperParameters={"fake_version": version}, **common)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="model-job", WaiterConfig=FAST)
    art = sm.describe_training_job(TrainingJobName="model-job")["ModelArtifacts"]["S3ModelArtifacts"]
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x", "ModelDataUrl": art})
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig=FAST)
    sm.create_training_job(TrainingJobName="running-job", HyperParameters={"fake_seconds": "300"}, **common)
    deadline = time.time() + 60
    while sm.describe_training_job(TrainingJobName="running-job")["SecondaryStatus"] != "Training":
        assert time.time() < deadline, "the training job never started"
        time.sleep(0.2)


def fake_stack(state_dir: Path, bucket: str, files: tuple[tuple[str, str], ...] = (
        ("train", "f.bin"), ("validation", "f.bin"), ("vocab", "f.bin"))):
    """A started LocalStack running the fake algorithm, with ``bucket`` holding ``data/CHANNEL/NAME``
    for each ``(CHANNEL, NAME)`` of ``files`` (the body is ``b"fake"``). The caller stops it."""
    from s2s_aws.local import LocalStack

    st = LocalStack(state_dir, train_command=FAKE_TRAIN, serve_command=FAKE_SERVE, stop_grace_s=3)
    s3 = st.client("s3")
    s3.create_bucket(Bucket=bucket)
    for channel, name in files:
        s3.put_object(Bucket=bucket, Key=f"data/{channel}/{name}", Body=b"fake")
    return st
