"""Local mode's trust boundary (issue 19 item 6): endpoints listen on loopback only, resource names
are matched in full (a trailing newline is refused), and a request cannot set Environment variables
that change how Python or the loader start the program (which would run code as the stack's user)."""
from __future__ import annotations

import io
import json
import sys
import tarfile

import botocore.exceptions
import pytest

from algo_utils import train_tiny_model

from s2s_aws.local import LocalStack
from s2s_aws.local.stack import default_serve_command

from local_utils import FAKE_TRAIN, FAST, ROLE, fake_stack

pytestmark = pytest.mark.slow

BUCKET = "sec-bucket"
CHANNELS = [{"ChannelName": c, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                               "S3Uri": f"s3://{BUCKET}/data/{c}"}}}
            for c in ("train", "validation", "vocab")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    st = fake_stack(tmp_path_factory.mktemp("state"), BUCKET)
    yield st
    st.stop()


@pytest.fixture(scope="module")
def sm(stack):
    return stack.client("sagemaker")


def _job(name, **extra):
    request = dict(TrainingJobName=name, RoleArn=ROLE,
                   AlgorithmSpecification={"TrainingImage": "x", "TrainingInputMode": "File"},
                   InputDataConfig=CHANNELS, OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out"},
                   ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                   StoppingCondition={"MaxRuntimeInSeconds": 60})
    request.update(extra)
    return request


def _refused(call, *args, **kwargs) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(*args, **kwargs)
    assert e.value.response["Error"]["Code"] == "ValidationException", e.value.response
    return e.value.response["Error"]["Message"]


def _all_files(root):
    return [p for p in root.rglob("*")]


def test_names_with_a_trailing_newline_are_refused_and_create_no_file(stack, sm):
    msg = _refused(sm.create_training_job, **_job("job\n"))
    assert "regular expression" in msg and "'job\\n'" in msg
    _refused(sm.create_model, ModelName="model\n", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x"})
    sm.create_model(ModelName="sec-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x"})
    variant = {"VariantName": "AllTraffic", "ModelName": "sec-model", "InstanceType": "ml.m5.large",
               "InitialInstanceCount": 1}
    _refused(sm.create_endpoint_config, EndpointConfigName="cfg\n", ProductionVariants=[variant])
    _refused(sm.create_endpoint_config, EndpointConfigName="cfg", ProductionVariants=[dict(variant, VariantName="v\n")])
    sm.create_endpoint_config(EndpointConfigName="sec-cfg", ProductionVariants=[variant])
    _refused(sm.create_endpoint, EndpointName="ep\n", EndpointConfigName="sec-cfg")
    _refused(sm.create_transform_job, TransformJobName="tr\n", ModelName="sec-model", TransformInput={
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in"}}},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    # other patterned members are matched in full too (the service checks them; botocore does not)
    _refused(sm.create_training_job, **dict(_job("sec-badrole"), RoleArn="not-an-arn-but-long-enough"))
    _refused(sm.create_training_job, **_job("sec-badchannel", InputDataConfig=[dict(CHANNELS[0], ChannelName="a/b")]))
    _refused(sm.create_training_job, **_job("sec-dotdot", InputDataConfig=[dict(CHANNELS[0], ChannelName="..")]))
    assert not [p for p in _all_files(stack.state_dir) if "\n" in p.name]
    from s2s_aws.local.state import Registry
    with pytest.raises(ValueError):
        Registry(stack.state_dir)._path("model", "m\n")  # the file-system guard matches in full too


@pytest.mark.parametrize("var", ["PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONINSPECT", "PYTHONUSERBASE",
                                 "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "BASH_ENV",
                                 "ENV", "PATH", "pythonpath"])
def test_environment_that_changes_how_programs_start_is_refused(sm, var):
    msg = _refused(sm.create_training_job, **_job(f"sec-env-{var.lower().replace('_', '-')}",
                                                  Environment={"OK_VAR": "1", var: "/tmp/x"}))
    assert var in msg and "CreateTrainingJob Environment" in msg
    msg = _refused(sm.create_model, ModelName=f"sec-env-{var.lower().replace('_', '-')}", ExecutionRoleArn=ROLE,
                   PrimaryContainer={"Image": "x", "Environment": {var: "/tmp/x"}})
    assert var in msg and "PrimaryContainer.Environment" in msg
    msg = _refused(sm.create_transform_job, TransformJobName="sec-env-tr", ModelName="sec-model",
                   Environment={var: "/tmp/x"}, TransformInput={
                       "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in"}}},
                   TransformOutput={"S3OutputPath": f"s3://{BUCKET}/out"},
                   TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    assert var in msg


def test_ordinary_environment_reaches_the_program(stack, sm):
    sm.create_training_job(**_job("sec-env-ok", Environment={"MY_SETTING": "42", "PYTHONUNBUFFERED": "1"}))
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="sec-env-ok", WaiterConfig=FAST)
    assert sm.describe_training_job(TrainingJobName="sec-env-ok")["TrainingJobStatus"] == "Completed"


def test_the_default_serve_command_listens_on_loopback():
    argv = default_serve_command()
    assert argv[argv.index("--host") + 1] == "127.0.0.1"


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of the sockets listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.append(addr)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_a_real_endpoint_listens_on_loopback_only(tmp_path):
    model_dir = train_tiny_model(tmp_path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    with LocalStack(tmp_path / "state", train_command=FAKE_TRAIN, stop_grace_s=3) as st:  # the real s2s-serve
        s3, sm = st.client("s3"), st.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="model/model.tar.gz", Body=buf.getvalue())
        sm.create_model(ModelName="real", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": "x", "ModelDataUrl": f"s3://{BUCKET}/model/model.tar.gz"})
        sm.create_endpoint_config(EndpointConfigName="real", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "real", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="real", EndpointConfigName="real")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="real", WaiterConfig={"Delay": 1, "MaxAttempts": 180})
        port = st.control_plane.endpoints._live["real"].proc.port
        assert _listening(port) == ["0100007F"]  # 127.0.0.1 only, not 0.0.0.0 (00000000) or ::
        out = st.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="real", ContentType="application/json",
            Body=json.dumps({"instances": [{"data": "a b"}]}))
        assert "predictions" in json.loads(out["Body"].read())
        sm.delete_endpoint(EndpointName="real")
