"""Local mode answers in SageMaker's shapes, not an echo of the request (issue 13 item 2).

Every operation the control plane serves is walked against botocore's output shape (unknown members,
types, enums and required members), and the fields real clients read are checked one by one:
OutputDataConfig.KmsKeyId, the built-in image's MetricDefinitions, FinalMetricDataList, the
training metrics in CloudWatch (what SageMaker SDK v2's TrainingJobAnalytics reads), endpoint
ProductionVariants, iam:SimulatePrincipalPolicy and logs:FilterLogEvents with a stream-name prefix.
Driven with the torch-free fake algorithm.
"""
from __future__ import annotations

import datetime
import json
import time

import botocore.exceptions
import botocore.session
import pytest

from s2s_aws.images import builtin_image_uri, default_image_uri
from s2s_aws.local.controlplane import ControlPlane

from local_utils import FAST, ROLE, fake_stack

pytestmark = pytest.mark.slow

BUCKET = "shapes-bucket"
BUILTIN = builtin_image_uri("us-east-1")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    st = fake_stack(tmp_path_factory.mktemp("state"), BUCKET)
    answers: list[tuple[str, dict]] = []
    handle = st.control_plane.handle

    def recording(operation, params):
        result = handle(operation, params)
        answers.append((operation, json.loads(json.dumps(result))))  # exactly what goes on the wire
        return result
    st.control_plane.handle = recording
    st.answers = answers
    yield st
    st.stop()


@pytest.fixture(scope="module")
def sm(stack):
    return stack.client("sagemaker")


def _train(sm, name, image=BUILTIN, metric_definitions=None, hyperparameters=None, wait=True):
    algo = {"TrainingImage": image, "TrainingInputMode": "File"}
    if metric_definitions is not None:
        algo["MetricDefinitions"] = metric_definitions
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE, AlgorithmSpecification=algo,
        InputDataConfig=[{"ChannelName": c, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/{c}"}}} for c in ("train", "validation", "vocab")],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600}, HyperParameters=hyperparameters or {})
    if wait:
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=FAST)
    return sm.describe_training_job(TrainingJobName=name)


def _until_done(sm, name):
    deadline = time.time() + 120
    while sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in ("InProgress", "Stopping"):
        assert time.time() < deadline, f"training job {name} never finished"
        time.sleep(0.3)


# ---------------------------------------------------------------------- the output-shape walk
_PY_TYPES = {"string": str, "boolean": bool, "integer": int, "long": int, "float": (int, float),
             "double": (int, float), "timestamp": (int, float, str), "blob": str}


def shape_errors(value, shape, path: str, allow_missing: frozenset = frozenset()) -> list[str]:
    """What in ``value`` does not fit botocore's ``shape``: unknown members, wrong types, bad enums,
    missing required members (except those in ``allow_missing``)."""
    kind = shape.type_name
    errors: list[str] = []
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, expected an object"]
        for key in value:
            if key not in shape.members:
                errors.append(f"{path}.{key}: not a member of {shape.name}")
        for key in shape.required_members:
            if key not in value and f"{path}.{key}" not in allow_missing:
                errors.append(f"{path}.{key}: required member of {shape.name} missing")
        for key, member in shape.members.items():
            if key in value:
                errors += shape_errors(value[key], member, f"{path}.{key}", allow_missing)
    elif kind == "list":
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__}, expected a list"]
        for i, item in enumerate(value):
            errors += shape_errors(item, shape.member, f"{path}[{i}]", allow_missing)
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, expected a map"]
        for k, v in value.items():
            errors += shape_errors(k, shape.key, f"{path} key", allow_missing)
            errors += shape_errors(v, shape.value, f"{path}.{k}", allow_missing)
    else:
        expected = _PY_TYPES[kind]
        if not isinstance(value, expected) or (kind in ("integer", "long", "float", "double", "timestamp") and isinstance(value, bool)):
            errors.append(f"{path}: {value!r} is not a {kind}")
        elif kind == "string" and shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} is not one of {shape.enum}")
    return errors


def test_shape_walker_finds_what_is_wrong():
    model = botocore.session.get_session().get_service_model("sagemaker")
    out = model.operation_model("DescribeEndpoint").output_shape
    good = {"EndpointName": "e", "EndpointArn": "a", "EndpointStatus": "InService", "CreationTime": 1.0,
            "LastModifiedTime": 2.0}
    assert shape_errors(good, out, "DescribeEndpoint") == []
    bad = dict(good, EndpointStatus="Running", Extra=1, CreationTime=True)
    del bad["LastModifiedTime"]
    errs = " | ".join(shape_errors(bad, out, "DescribeEndpoint"))
    assert "Extra: not a member" in errs and "'Running' is not one of" in errs
    assert "LastModifiedTime: required member" in errs and "CreationTime: True is not a timestamp" in errs


def test_every_served_operation_answers_in_botocore_output_shape(stack, sm):
    s3 = stack.client("s3")
    runtime = stack.client("sagemaker-runtime")
    d = _train(sm, "shape-job")
    assert d["TrainingJobStatus"] == "Completed", d.get("FailureReason")
    sm.list_training_jobs()
    _train(sm, "shape-stop", hyperparameters={"fake_seconds": "60"}, wait=False)
    deadline = time.time() + 60
    while sm.describe_training_job(TrainingJobName="shape-stop")["SecondaryStatus"] != "Training":
        assert time.time() < deadline
        time.sleep(0.2)
    sm.describe_training_job(TrainingJobName="shape-stop")  # InProgress, before any ModelArtifacts
    sm.create_training_job(  # one that fails (no channels): Failed with a FailureReason
        TrainingJobName="shape-fail", RoleArn=ROLE, AlgorithmSpecification={"TrainingImage": BUILTIN,
                                                                            "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60})
    _until_done(sm, "shape-fail")  # (the waiter raises on Failed)
    assert sm.describe_training_job(TrainingJobName="shape-fail")["TrainingJobStatus"] == "Failed"
    sm.stop_training_job(TrainingJobName="shape-stop")
    art = d["ModelArtifacts"]["S3ModelArtifacts"]
    sm.create_model(ModelName="shape-model", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": BUILTIN, "ModelDataUrl": art}, Tags=[{"Key": "k", "Value": "v"}])
    sm.describe_model(ModelName="shape-model")
    sm.list_models()
    for cfg in ("shape-cfg", "shape-cfg2"):
        sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "shape-model", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}])
    sm.describe_endpoint_config(EndpointConfigName="shape-cfg")
    sm.list_endpoint_configs()
    sm.create_endpoint(EndpointName="shape-ep", EndpointConfigName="shape-cfg")
    sm.describe_endpoint(EndpointName="shape-ep")  # Creating
    sm.get_waiter("endpoint_in_service").wait(EndpointName="shape-ep", WaiterConfig=FAST)
    sm.update_endpoint(EndpointName="shape-ep", EndpointConfigName="shape-cfg2")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="shape-ep", WaiterConfig=FAST)
    sm.list_endpoints()
    runtime.invoke_endpoint(EndpointName="shape-ep", ContentType="application/json",
                            Body=json.dumps({"instances": [{"data": "a b"}]}))
    s3.put_object(Bucket=BUCKET, Key="batch/in/part.jsonl", Body=b'{"source": "a b"}\n')
    transform = dict(ModelName="shape-model", TransformInput={
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/in"}},
        "ContentType": "application/jsonlines", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/batch/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.create_transform_job(TransformJobName="shape-tr", **transform)
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="shape-tr", WaiterConfig=FAST)
    sm.create_transform_job(TransformJobName="shape-tr2", **transform)
    sm.stop_transform_job(TransformJobName="shape-tr2")
    sm.describe_transform_job(TransformJobName="shape-tr")
    sm.list_transform_jobs()
    model_arn = sm.describe_model(ModelName="shape-model")["ModelArn"]
    sm.add_tags(ResourceArn=model_arn, Tags=[{"Key": "team", "Value": "nlp"}])
    sm.list_tags(ResourceArn=model_arn)
    sm.delete_tags(ResourceArn=model_arn, TagKeys=["team"])
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="shape-stop", WaiterConfig=FAST)
    sm.describe_training_job(TrainingJobName="shape-stop")
    sm.delete_endpoint(EndpointName="shape-ep")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="shape-ep", WaiterConfig=FAST)
    sm.delete_endpoint_config(EndpointConfigName="shape-cfg")
    sm.delete_model(ModelName="shape-model")

    model = botocore.session.get_session().get_service_model("sagemaker")
    served = {name[3:] for name in dir(ControlPlane) if name.startswith("op_")}
    walked = {op for op, _ in stack.answers}
    assert served - walked == set(), "a served operation is missing from the walk"
    errors = []
    for op, answer in stack.answers:
        shape = model.operation_model(op).output_shape
        if shape is None:
            assert answer == {}, (op, answer)
            continue
        allow: frozenset = frozenset()
        if op == "DescribeTrainingJob" and answer.get("TrainingJobStatus") != "Completed":
            # SageMaker leaves ModelArtifacts out until there are artifacts (the model marks it required)
            allow = frozenset({"DescribeTrainingJob.ModelArtifacts"})
        errors += shape_errors(answer, shape, op, allow)
    assert errors == []


def test_describe_training_job_fills_what_clients_read(sm):
    d = _train(sm, "fill-builtin")
    assert d["TrainingJobStatus"] == "Completed", d.get("FailureReason")
    assert d["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/output", "KmsKeyId": ""}
    defs = {m["Name"]: m["Regex"] for m in d["AlgorithmSpecification"]["MetricDefinitions"]}
    assert set(defs) == {"validation:accuracy", "validation:bleu", "validation:perplexity"}
    assert d["FinalMetricDataList"] == [
        {"MetricName": "validation:bleu", "Value": 10.0, "Timestamp": d["FinalMetricDataList"][0]["Timestamp"]}]
    assert d["TrainingStartTime"] <= d["TrainingEndTime"]
    assert d["CreationTime"] <= d["TrainingStartTime"]
    assert d["BillableTimeInSeconds"] >= 1 and d["TrainingTimeInSeconds"] >= 1
    assert d["EnableNetworkIsolation"] is False
    assert [t["Status"] for t in d["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert all("EndTime" in t for t in d["SecondaryStatusTransitions"])
    for channel in d["InputDataConfig"]:  # the defaults SageMaker fills in
        assert channel["CompressionType"] == "None" and channel["RecordWrapperType"] == "None"
        assert channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"


def test_uncompressed_output_is_uploaded_as_files_and_served(stack, sm):
    sm.create_training_job(
        TrainingJobName="raw-job", RoleArn=ROLE, AlgorithmSpecification={"TrainingImage": BUILTIN,
                                                                         "TrainingInputMode": "File"},
        InputDataConfig=[{"ChannelName": c, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/{c}"}}} for c in ("train", "validation", "vocab")],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output", "CompressionType": "NONE"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60})
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="raw-job", WaiterConfig=FAST)
    d = sm.describe_training_job(TrainingJobName="raw-job")
    assert d["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/output/raw-job/output/model/"
    keys = [o["Key"] for o in stack.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix="output/raw-job/output/")["Contents"]]
    assert keys == ["output/raw-job/output/model/fake-model.json"]
    sm.create_model(ModelName="raw-model", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": BUILTIN, "ModelDataUrl": d["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName="raw-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "raw-model", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="raw-ep", EndpointConfigName="raw-cfg")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="raw-ep", WaiterConfig=FAST)
    out = stack.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="raw-ep", ContentType="application/json", Body=json.dumps({"instances": [{"data": "a b"}]}))
    assert json.loads(out["Body"].read())["predictions"][0]["target"] == "b a"
    sm.delete_endpoint(EndpointName="raw-ep")


def test_describe_echoes_the_settings_sent(sm):
    extra = {"RetryStrategy": {"MaximumRetryAttempts": 2}, "ExperimentConfig": {"ExperimentName": "exp"},
             "DebugHookConfig": {"S3OutputPath": f"s3://{BUCKET}/debug"},
             "ProfilerConfig": {"DisableProfiler": True}, "Environment": {"MY_SETTING": "1"}}
    sm.create_training_job(
        TrainingJobName="echo-job", RoleArn=ROLE, AlgorithmSpecification={"TrainingImage": BUILTIN,
                                                                          "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60}, **extra)
    d = sm.describe_training_job(TrainingJobName="echo-job")
    assert {k: d.get(k) for k in extra} == extra
    sm.create_model(ModelName="echo-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": BUILTIN},
                    VpcConfig={"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]})
    assert sm.describe_model(ModelName="echo-model")["VpcConfig"] == {"SecurityGroupIds": ["sg-1"],
                                                                      "Subnets": ["subnet-1"]}
    sm.create_endpoint_config(EndpointConfigName="echo-cfg", KmsKeyId="alias/k", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "echo-model", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    assert sm.describe_endpoint_config(EndpointConfigName="echo-cfg")["KmsKeyId"] == "alias/k"


def test_describe_model_fills_the_container_defaults(sm):
    sm.create_model(ModelName="fill-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": BUILTIN})
    container = sm.describe_model(ModelName="fill-model")["PrimaryContainer"]
    assert container == {"Image": BUILTIN, "Mode": "SingleModel", "Environment": {}}
    assert sm.describe_model(ModelName="fill-model")["EnableNetworkIsolation"] is False


def test_metric_definitions_ours_for_our_image_none_for_others_and_given_ones_kept(sm):
    from s2s_aws.metrics import METRIC_DEFINITIONS
    ours = _train(sm, "md-ours", image=default_image_uri("123456789012", "us-east-1"), wait=False)
    assert ours["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    other = _train(sm, "md-other", image="local/other:1", wait=False)
    assert "MetricDefinitions" not in other["AlgorithmSpecification"]
    given = [{"Name": "my:metric", "Regex": "m=([0-9.]+)"}]
    mine = _train(sm, "md-given", image=BUILTIN, metric_definitions=given, wait=False)
    assert mine["AlgorithmSpecification"]["MetricDefinitions"] == given


def test_training_metrics_are_published_to_cloudwatch(stack, sm):
    d = _train(sm, "cw-job", hyperparameters={"fake_seconds": "0.5"})
    assert d["TrainingJobStatus"] == "Completed", d.get("FailureReason")
    cw = stack.client("cloudwatch")
    start = d["TrainingStartTime"] - datetime.timedelta(minutes=1)
    end = d["TrainingEndTime"] + datetime.timedelta(minutes=1)
    for dims in ([{"Name": "TrainingJobName", "Value": "cw-job"}], [{"Name": "Host", "Value": "cw-job/algo-1"}]):
        points = cw.get_metric_statistics(Namespace="/aws/sagemaker/TrainingJobs", MetricName="validation:bleu",
                                          Dimensions=dims, StartTime=start, EndTime=end, Period=60,
                                          Statistics=["Average"])["Datapoints"]
        assert points, dims
        assert points[-1]["Average"] == pytest.approx(d["FinalMetricDataList"][0]["Value"])
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="/aws/sagemaker/TrainingJobs", Dimensions=[
        {"Name": "TrainingJobName", "Value": "cw-job"}])["Metrics"]}
    assert names == {"validation:bleu"}  # the built-in's definitions: train:perplexity is not among them


def test_endpoint_production_variants_show_counts_and_deployed_image(stack, sm):
    d = _train(sm, "ep-job")
    sm.create_model(ModelName="pv-model", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": BUILTIN, "ModelDataUrl": d["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName="pv-cfg", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "pv-model", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 2}])
    sm.create_endpoint(EndpointName="pv-ep", EndpointConfigName="pv-cfg")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="pv-ep", WaiterConfig=FAST)
    try:
        (pv,) = sm.describe_endpoint(EndpointName="pv-ep")["ProductionVariants"]
        assert pv["VariantName"] == "AllTraffic"
        assert pv["CurrentInstanceCount"] == pv["DesiredInstanceCount"] == 2
        assert pv["CurrentWeight"] == pv["DesiredWeight"] == 1.0
        (image,) = pv["DeployedImages"]
        assert image["SpecifiedImage"] == BUILTIN and image["ResolvedImage"] == BUILTIN
        assert isinstance(image["ResolutionTime"], datetime.datetime)
    finally:
        sm.delete_endpoint(EndpointName="pv-ep")


def test_iam_simulate_principal_policy_allows_everything(stack):
    iam = stack.client("iam")
    out = iam.simulate_principal_policy(PolicySourceArn=ROLE, ActionNames=["s3:GetObject", "sagemaker:CreateModel"],
                                        ResourceArns=["arn:aws:s3:::b/k"])
    assert out["IsTruncated"] is False
    assert [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in out["EvaluationResults"]] == [
        ("s3:GetObject", "arn:aws:s3:::b/k", "allowed"), ("sagemaker:CreateModel", "arn:aws:s3:::b/k", "allowed")]
    out = iam.simulate_principal_policy(PolicySourceArn=ROLE, ActionNames=["iam:GetRole"])
    assert [r["EvalResourceName"] for r in out["EvaluationResults"]] == ["*"]
    iam.create_role(RoleName="still-moto", AssumeRolePolicyDocument="{}")  # the rest of IAM is moto's
    assert iam.get_role(RoleName="still-moto")["Role"]["RoleName"] == "still-moto"


def test_filter_log_events_honours_the_stream_name_prefix(stack):
    logs = stack.client("logs")
    group = "/shapes/filter"
    logs.create_log_group(logGroupName=group)
    for stream in ("job-a/algo-1", "job-ab/algo-1", "job-b/algo-1"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": f"line of {stream}"}])
    got = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="job-a")
    assert sorted(e["logStreamName"] for e in got["events"]) == ["job-a/algo-1", "job-ab/algo-1"]
    got = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="job-a/")
    assert [e["message"] for e in got["events"]] == ["line of job-a/algo-1"]
    assert logs.filter_log_events(logGroupName=group, logStreamNamePrefix="nothing")["events"] == []
    assert len(logs.filter_log_events(logGroupName=group)["events"]) == 3
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group, logStreamNamePrefix="job",
                                                          filterPattern="job-b")["events"]] == ["line of job-b/algo-1"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.filter_log_events(logGroupName=group, logStreamNamePrefix="job", logStreamNames=["job-a/algo-1"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.filter_log_events(logGroupName="/no/such/group", logStreamNamePrefix="x")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    group_arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{group}"
    got = logs.filter_log_events(logGroupIdentifier=group_arn, logStreamNamePrefix="job-b")
    assert [e["logStreamName"] for e in got["events"]] == ["job-b/algo-1"]
