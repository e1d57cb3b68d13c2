"""The local SageMaker control plane against plain boto3, with the torch-free fake algorithm.

One stack serves the whole module; the fake train/serve programs (tests/fake_algorithm.py)
honour the container contract, so these tests exercise the control plane, not the model.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request

import botocore.exceptions
import pytest

from s2s_aws.contract.metrics import METRIC_DEFINITIONS

from local_utils import FAST, ROLE, fake_stack

pytestmark = pytest.mark.slow

BUCKET = "cp-bucket"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    st = fake_stack(tmp_path_factory.mktemp("state"), BUCKET, (
        ("train", "train.rec"), ("validation", "val.rec"), ("vocab", "vocab.src.json"), ("vocab", "vocab.trg.json")))
    yield st
    st.stop()


@pytest.fixture(scope="module")
def sm(stack):
    return stack.client("sagemaker")


@pytest.fixture(scope="module")
def runtime(stack):
    return stack.client("sagemaker-runtime")


def _channels(names=("train", "validation", "vocab")):
    return [{"ChannelName": c, "ContentType": "application/x-recordio-protobuf",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/{c}",
                                             "S3DataDistributionType": "FullyReplicated"}}} for c in names]


def _train(sm, name, hyperparameters=None, channels=("train", "validation", "vocab"), wait=True):
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": "local/seq2seq:1", "TrainingInputMode": "File",
                                "MetricDefinitions": METRIC_DEFINITIONS},
        InputDataConfig=_channels(channels), OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600}, HyperParameters=hyperparameters or {})
    if wait:
        try:
            sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=FAST)
        except botocore.exceptions.WaiterError:
            pass
    return sm.describe_training_job(TrainingJobName=name)


def _deploy(sm, name, model_data, env=None):
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": "local/seq2seq:1", "ModelDataUrl": model_data, "Environment": env or {}})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])


def _code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_training_job_runs_to_completed_with_logs_metrics_and_model(stack, sm):
    d = _train(sm, "tj-ok", {"fake_version": "7"})
    assert d["TrainingJobStatus"] == "Completed", d.get("FailureReason")
    assert [t["Status"] for t in d["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert d["TrainingJobArn"] == "arn:aws:sagemaker:us-east-1:123456789012:training-job/tj-ok"
    uri = d["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == f"s3://{BUCKET}/output/tj-ok/output/model.tar.gz"
    metrics = {m["MetricName"]: m["Value"] for m in d["FinalMetricDataList"]}
    assert metrics["validation:bleu"] == pytest.approx(10.0)  # the fake prints 10 * steps (1 step)
    assert metrics["train:perplexity"] == pytest.approx(100.0)
    # the model archive holds the model folder's files at its root
    import io
    import tarfile
    body = stack.client("s3").get_object(Bucket=BUCKET, Key="output/tj-ok/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.getnames() == ["fake-model.json"]
        assert json.load(tar.extractfile("fake-model.json"))["version"] == "7"
    # the program's output went to CloudWatch Logs under the SageMaker names
    logs = stack.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix="tj-ok/algo-1-")["logStreams"]
    assert len(streams) == 1
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"]
    assert any("#metric validation:bleu=" in e["message"] for e in events)
    # the container saw the three config files
    ml = stack.state_dir / "jobs" / "training-job" / "tj-ok" / "ml"
    assert json.loads((ml / "input/config/resourceconfig.json").read_text())["hosts"] == ["algo-1"]
    assert set(json.loads((ml / "input/config/inputdataconfig.json").read_text())) == {"train", "validation", "vocab"}
    assert sorted(p.name for p in (ml / "input/data/vocab").iterdir()) == ["vocab.src.json", "vocab.trg.json"]


def test_missing_channel_fails_with_the_containers_reason(sm):
    d = _train(sm, "tj-novocab", channels=("train", "validation"))
    assert d["TrainingJobStatus"] == "Failed"
    assert d["FailureReason"].startswith("AlgorithmError: ")
    assert "Channel 'vocab' is missing" in d["FailureReason"]
    assert "ModelArtifacts" not in d


def test_empty_s3_prefix_fails_the_download(sm):
    sm.create_training_job(
        TrainingJobName="tj-empty", RoleArn=ROLE, AlgorithmSpecification={"TrainingImage": "x", "TrainingInputMode": "File"},
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/nothing-here"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60})
    with pytest.raises(botocore.exceptions.WaiterError):
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="tj-empty", WaiterConfig=FAST)
    d = sm.describe_training_job(TrainingJobName="tj-empty")
    assert "No S3 objects found under S3 URL" in d["FailureReason"]


def test_stop_training_job_ends_stopped(stack, sm):
    _train(sm, "tj-stop", {"fake_seconds": "120"}, wait=False)
    deadline = time.time() + 60
    log = stack.state_dir / "jobs" / "training-job" / "tj-stop" / "output.log"
    while not (log.exists() and "#metric" in log.read_text()):  # the program runs (and handles SIGTERM)
        assert time.time() < deadline, "the job never started training"
        time.sleep(0.2)
    assert sm.describe_training_job(TrainingJobName="tj-stop")["SecondaryStatus"] == "Training"
    sm.stop_training_job(TrainingJobName="tj-stop")
    assert sm.describe_training_job(TrainingJobName="tj-stop")["TrainingJobStatus"] in ("Stopping", "Stopped")
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="tj-stop", WaiterConfig=FAST)
    d = sm.describe_training_job(TrainingJobName="tj-stop")
    assert d["TrainingJobStatus"] == "Stopped"
    assert d["SecondaryStatus"] == "Stopped"
    # the fake saves its model on SIGTERM, and SageMaker uploads what a stopped job wrote
    assert d["ModelArtifacts"]["S3ModelArtifacts"].endswith("/tj-stop/output/model.tar.gz")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.stop_training_job(TrainingJobName="tj-stop")
    assert _code(e) == "ValidationException"


def test_errors_use_the_real_codes(sm):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.describe_training_job(TrainingJobName="no-such-job")
    assert _code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.stop_training_job(TrainingJobName="no-such-job")
    assert _code(e) == "ResourceNotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        _train(sm, "tj-ok")
    assert _code(e) == "ResourceInUse"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_model(ModelName="bad_name!", PrimaryContainer={"Image": "x"}, ExecutionRoleArn=ROLE)
    assert _code(e) == "ValidationException" and "regular expression" in str(e.value)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_endpoint_config(EndpointConfigName="cfg-missing-model", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "no-such-model", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1}])
    assert _code(e) == "ValidationException" and "Could not find model" in str(e.value)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_endpoint(EndpointName="ep-missing-config", EndpointConfigName="no-such-config")
    assert _code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.delete_endpoint(EndpointName="no-such-endpoint")
    assert _code(e) == "ValidationException"


def test_server_side_validation_of_raw_requests(stack):
    """Required members are checked by the server too, not only by boto3's client-side validation."""
    req = urllib.request.Request(stack.endpoint_url + "/", data=json.dumps({"TrainingJobName": "x"}).encode(),
                                 headers={"X-Amz-Target": "SageMaker.CreateTrainingJob",
                                          "Content-Type": "application/x-amz-json-1.1"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 400
    body = json.loads(e.value.read())
    assert body["__type"] == "ValidationException"
    assert "RoleArn" in body["message"] and "OutputDataConfig" in body["message"]


def test_endpoint_invoke_update_under_load_and_delete(stack, sm, runtime):
    v1 = _train(sm, "tj-v1", {"fake_version": "1"})["ModelArtifacts"]["S3ModelArtifacts"]
    v2 = _train(sm, "tj-v2", {"fake_version": "2"})["ModelArtifacts"]["S3ModelArtifacts"]
    _deploy(sm, "m-v1", v1, env={"FAKE_SERVE_DELAY": "0.05"})
    _deploy(sm, "m-v2", v2, env={"FAKE_SERVE_DELAY": "0.05"})
    sm.create_endpoint(EndpointName="ep-upd", EndpointConfigName="m-v1")
    assert sm.describe_endpoint(EndpointName="ep-upd")["EndpointStatus"] in ("Creating", "InService")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep-upd", WaiterConfig=FAST)

    def invoke() -> dict:
        r = runtime.invoke_endpoint(EndpointName="ep-upd", ContentType="application/json", Accept="application/json",
                                    Body=json.dumps({"instances": [{"data": "one two three"}]}))
        assert r["InvokedProductionVariant"] == "AllTraffic"
        return json.loads(r["Body"].read())["predictions"][0]

    assert invoke() == {"target": "three two one", "model": "1"}
    seen: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def hammer() -> None:
        while not done.is_set():
            try:
                seen.append(invoke()["model"])
            except BaseException as e:  # noqa: BLE001 - every failure counts
                errors.append(e)

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(0.5)
        sm.update_endpoint(EndpointName="ep-upd", EndpointConfigName="m-v2")
        assert sm.describe_endpoint(EndpointName="ep-upd")["EndpointStatus"] in ("Updating", "InService")
        with pytest.raises(botocore.exceptions.ClientError):  # a second update while one runs
            if sm.describe_endpoint(EndpointName="ep-upd")["EndpointStatus"] == "Updating":
                sm.update_endpoint(EndpointName="ep-upd", EndpointConfigName="m-v1")
            else:
                raise botocore.exceptions.ClientError({"Error": {"Code": "x"}}, "UpdateEndpoint")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="ep-upd", WaiterConfig=FAST)
        deadline = time.time() + 30
        while (not seen or seen[-1] != "2") and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        done.set()
        for w in workers:
            w.join()
    assert errors == []
    assert "1" in seen and seen[-1] == "2"
    assert seen.index("2") > 0 and "1" not in seen[seen.index("2") + 8:]  # switched once, for good
    assert sm.describe_endpoint(EndpointName="ep-upd")["EndpointConfigName"] == "m-v2"

    # upstream errors come back as ModelError with the original status
    with pytest.raises(botocore.exceptions.ClientError) as e:
        runtime.invoke_endpoint(EndpointName="ep-upd", ContentType="text/csv", Body=b"1,2")
    assert _code(e) == "ModelError"
    assert e.value.response["OriginalStatusCode"] == 415
    with pytest.raises(botocore.exceptions.ClientError) as e:
        runtime.invoke_endpoint(EndpointName="ep-upd", ContentType="application/json", Body=b"{not json")
    assert e.value.response["OriginalStatusCode"] == 400

    sm.delete_endpoint(EndpointName="ep-upd")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="ep-upd", WaiterConfig=FAST)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        invoke()
    assert _code(e) == "ValidationError"
    names = [x["EndpointName"] for x in sm.list_endpoints()["Endpoints"]]
    assert "ep-upd" not in names


def test_endpoint_whose_server_dies_is_failed_with_a_reason(stack, sm):
    # a model archive without the fake's model file: the fake server exits at start
    stack.client("s3").put_object(Bucket=BUCKET, Key="broken/model.tar.gz", Body=_empty_tar())
    _deploy(sm, "m-broken", f"s3://{BUCKET}/broken/model.tar.gz")
    sm.create_endpoint(EndpointName="ep-broken", EndpointConfigName="m-broken")
    with pytest.raises(botocore.exceptions.WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="ep-broken", WaiterConfig=FAST)
    d = sm.describe_endpoint(EndpointName="ep-broken")
    assert d["EndpointStatus"] == "Failed"
    assert "exited with status 3" in d["FailureReason"] and "no model at" in d["FailureReason"]
    sm.delete_endpoint(EndpointName="ep-broken")


def _empty_tar() -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz"):
        pass
    return buf.getvalue()


def test_transform_job_writes_out_files(stack, sm):
    art = _train(sm, "tj-tr", {})["ModelArtifacts"]["S3ModelArtifacts"]
    _deploy(sm, "m-tr", art)
    s3 = stack.client("s3")
    lines = [json.dumps({"source": f"a b {i}"}) for i in range(5)]
    s3.put_object(Bucket=BUCKET, Key="batch/in/part1.jsonl", Body="\n".join(lines).encode())
    sm.create_transform_job(
        TransformJobName="tr-1", ModelName="m-tr", BatchStrategy="MultiRecord",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/in"}},
                        "ContentType": "application/jsonlines", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/batch/out", "Accept": "application/jsonlines",
                         "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="tr-1", WaiterConfig=FAST)
    assert sm.describe_transform_job(TransformJobName="tr-1")["TransformJobStatus"] == "Completed"
    out = s3.get_object(Bucket=BUCKET, Key="batch/out/part1.jsonl.out")["Body"].read().decode()
    assert [json.loads(x)["target"] for x in out.splitlines()] == [f"{i} b a" for i in range(5)]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_transform_job(TransformJobName="tr-1", ModelName="m-tr", TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/in"}}},
            TransformOutput={"S3OutputPath": f"s3://{BUCKET}/batch/out"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    assert _code(e) == "ResourceInUse"


def test_tags_lists_and_deletes(sm):
    sm.create_model(ModelName="m-tags", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x"},
                    Tags=[{"Key": "s2s-aws:run", "Value": "r1"}])
    model_arn = sm.describe_model(ModelName="m-tags")["ModelArn"]
    assert model_arn == "arn:aws:sagemaker:us-east-1:123456789012:model/m-tags"
    sm.add_tags(ResourceArn=model_arn, Tags=[{"Key": "team", "Value": "nlp"}])
    assert {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=model_arn)["Tags"]} == {
        "s2s-aws:run": "r1", "team": "nlp"}
    assert "m-tags" in [m["ModelName"] for m in sm.list_models(NameContains="tags")["Models"]]
    jobs = sm.list_training_jobs(StatusEquals="Completed", MaxResults=100)["TrainingJobSummaries"]
    assert "tj-ok" in [j["TrainingJobName"] for j in jobs]
    assert all(j["TrainingJobStatus"] == "Completed" for j in jobs)
    page = sm.list_training_jobs(MaxResults=1)
    assert len(page["TrainingJobSummaries"]) == 1 and "NextToken" in page
    sm.delete_model(ModelName="m-tags")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.describe_model(ModelName="m-tags")
    assert _code(e) == "ValidationException"
