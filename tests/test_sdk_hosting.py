"""Hosting: deploy / update / autoscaling / delete (moto, plus a fake UpdateEndpoint and Stubber)."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.stub import Stubber
from test_sdk_support import BUCKET, IMAGE, PREFIX, REGION, RUN_ID, aws, prep, sess  # noqa: F401

from s2s_aws.channels import Channels
from s2s_aws.errors import EndpointFailed, InputError, WaitTimeout
from s2s_aws.hosting import AutoScaling, Endpoint, VOCAB_TAG, blue_green

MODEL_DATA = f"s3://{BUCKET}/{PREFIX}/output/job/output/model.tar.gz"


class UpdatingClient:
    """The moto SageMaker client plus the UpdateEndpoint moto lacks (records requests).

    ``rollback=True`` simulates SageMaker rolling an update back: the endpoint keeps its old config.
    """

    def __init__(self, real: Any, rollback: bool = False):
        self._real = real
        self.rollback = rollback
        self.updates: list[dict[str, Any]] = []
        self._config: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def update_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.updates.append(kwargs)
        if not self.rollback:
            self._config[kwargs["EndpointName"]] = kwargs["EndpointConfigName"]
        return {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/" + kwargs["EndpointName"]}

    def describe_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        desc = self._real.describe_endpoint(**kwargs)
        if kwargs["EndpointName"] in self._config:
            desc["EndpointConfigName"] = self._config[kwargs["EndpointName"]]
        return desc


def _names(sess) -> tuple[list[str], list[str], list[str]]:
    sm = sess.sagemaker
    return ([e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
            [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
            [m["ModelName"] for m in sm.list_models()["Models"]])


def test_job_deploy_creates_model_config_endpoint_and_delete_removes_them(sess, prep) -> None:
    job = sess.train(sess.upload_channels(prep), {})
    job.wait()
    endpoint = job.deploy(instance_type="ml.m5.xlarge")
    assert endpoint.status == "InService"
    endpoints, configs, models = _names(sess)
    assert endpoints == [endpoint.name] and len(configs) == 1 and len(models) == 1
    assert endpoint.name.startswith("seq2seq-") and len(endpoint.name) <= 63

    sm = sess.sagemaker
    model = sm.describe_model(ModelName=models[0])
    assert model["PrimaryContainer"] == {"Image": IMAGE, "ModelDataUrl": job.model_artifacts}
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=model["ModelArn"])["Tags"]}
    assert tags == {"s2s-aws:run": RUN_ID, VOCAB_TAG: f"s3://{BUCKET}/{PREFIX}/vocab/"}
    config = sm.describe_endpoint_config(EndpointConfigName=configs[0])
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.m5.xlarge"
    ep_tags = sm.list_tags(ResourceArn=sm.describe_endpoint(EndpointName=endpoint.name)["EndpointArn"])["Tags"]
    assert {"Key": "s2s-aws:run", "Value": RUN_ID} in ep_tags

    deleted = endpoint.delete()
    assert deleted == [f"endpoint/{endpoint.name}", f"endpoint-config/{configs[0]}", f"model/{models[0]}"]
    assert _names(sess) == ([], [], [])
    assert endpoint.delete() == []  # deleting twice is harmless


def test_deploy_never_collides_with_leftover_model_names(sess) -> None:
    first = sess.deploy(MODEL_DATA, model_name="my-model", endpoint_name="ep-one")
    second = sess.deploy(MODEL_DATA, model_name="my-model", endpoint_name="ep-two")
    _, _, models = _names(sess)
    assert "my-model" in models and len(models) == 2
    assert first.model_names() != second.model_names()


def test_deploy_to_an_existing_endpoint_updates_it(sess) -> None:
    sess.deploy(MODEL_DATA, endpoint_name="translate-prod")
    fake = UpdatingClient(sess.sagemaker)
    sess._clients["sagemaker"] = fake
    endpoint = sess.deploy(MODEL_DATA.replace("job", "job2"), endpoint_name="translate-prod",
                           deployment_config=blue_green(rollback_alarms=["s2s-5xx"]))
    assert endpoint.name == "translate-prod"
    assert len(fake.updates) == 1
    update = fake.updates[0]
    assert update["EndpointName"] == "translate-prod"
    assert endpoint.config_name() == update["EndpointConfigName"]
    assert update["DeploymentConfig"]["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "s2s-5xx"}]}
    new_model = endpoint.model_names()[0]
    assert fake.describe_model(ModelName=new_model)["PrimaryContainer"]["ModelDataUrl"].endswith("job2/output/model.tar.gz")


def test_update_request_uses_a_new_config_with_the_current_variant(sess) -> None:
    endpoint = sess.deploy(MODEL_DATA, endpoint_name="ep", instance_type="ml.c5.large", initial_instance_count=2)
    old_config = endpoint.config_name()
    fake = UpdatingClient(sess.sagemaker)
    sess._clients["sagemaker"] = fake
    deployment = blue_green(traffic="CANARY", step_percent=25, wait_interval_s=120, termination_wait_s=60)
    new_config = endpoint.update(MODEL_DATA.replace("job", "v2"), deployment_config=deployment, delete_previous=True)
    assert fake.updates == [{"EndpointName": "ep", "EndpointConfigName": new_config, "DeploymentConfig": {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 120,
                                            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25}},
            "TerminationWaitInSeconds": 60}}}]
    variant = fake.describe_endpoint_config(EndpointConfigName=new_config)["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.large", 2)
    _, configs, models = _names(sess)
    assert old_config not in configs and new_config in configs and len(models) == 1


def test_rolled_back_update_raises_endpoint_failed(sess) -> None:
    endpoint = sess.deploy(MODEL_DATA, endpoint_name="ep")
    sess._clients["sagemaker"] = UpdatingClient(sess.sagemaker, rollback=True)
    with pytest.raises(EndpointFailed, match="rolled back") as info:
        endpoint.update(MODEL_DATA.replace("job", "bad"))
    assert info.value.status == "RolledBack"


def test_update_needs_exactly_one_model_source(sess) -> None:
    endpoint = sess.deploy(MODEL_DATA, endpoint_name="ep")
    with pytest.raises(InputError, match="exactly one"):
        endpoint.update()
    with pytest.raises(InputError, match="exactly one"):
        endpoint.update(MODEL_DATA, model_name="m")


def _endpoint_desc(name: str, status: str, reason: str | None = None) -> dict[str, Any]:
    desc = {"EndpointName": name, "EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{name}",
            "EndpointConfigName": "cfg", "EndpointStatus": status,
            "CreationTime": dt.datetime(2024, 1, 1), "LastModifiedTime": dt.datetime(2024, 1, 1)}
    if reason:
        desc["FailureReason"] = reason
    return desc


def test_failed_endpoint_raises_with_reason(sess) -> None:
    stub = Stubber(sess.sagemaker)
    stub.add_response("describe_endpoint", _endpoint_desc("ep", "Creating"), {"EndpointName": "ep"})
    stub.add_response("describe_endpoint", _endpoint_desc("ep", "Failed", "The primary container did not pass the "
                                                         "ping health check"), {"EndpointName": "ep"})
    with stub:
        with pytest.raises(EndpointFailed, match="ping health check") as info:
            Endpoint(sess, "ep").wait()
    assert info.value.status == "Failed" and "/aws/sagemaker/Endpoints/ep" in str(info.value)


def test_endpoint_wait_timeout(sess) -> None:
    stub = Stubber(sess.sagemaker)
    for _ in range(3):
        stub.add_response("describe_endpoint", _endpoint_desc("ep", "Creating"), {"EndpointName": "ep"})
    with stub:
        with pytest.raises(WaitTimeout, match="still Creating"):
            Endpoint(sess, "ep").wait(timeout=2)
    assert sess.fake_clock.sleeps == [1.0, 1.0]


def test_autoscaling_registers_target_tracking_and_delete_deregisters(sess) -> None:
    endpoint = sess.deploy(MODEL_DATA, endpoint_name="ep-scale",
                           autoscaling=AutoScaling(min_instances=1, max_instances=4, target_invocations_per_instance=250))
    aas = sess.client("application-autoscaling")
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
        ("endpoint/ep-scale/variant/AllTraffic", 1, 4)]
    policy = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling" and config["TargetValue"] == 250
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    endpoint.delete()
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []


def test_bad_autoscaling_bounds_are_rejected_before_deploying(sess) -> None:
    with pytest.raises(InputError, match="min_instances"):
        sess.deploy(MODEL_DATA, autoscaling=AutoScaling(min_instances=3, max_instances=2))
    assert _names(sess) == ([], [], [])


def test_blue_green_shapes() -> None:
    assert blue_green() == {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300},
        "TerminationWaitInSeconds": 300}}
    linear = blue_green(traffic="linear", step_percent=20, max_execution_timeout_s=3600)
    policy = linear["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 20}
    assert policy["MaximumExecutionTimeoutInSeconds"] == 3600
    with pytest.raises(InputError):
        blue_green(traffic="sideways")


def test_endpoint_vocab_downloads_the_vocab_channel(sess, prep) -> None:
    channels = sess.upload_channels(prep)
    endpoint = sess.deploy(MODEL_DATA, endpoint_name="ep", vocab_uri=channels.vocab)
    src, trg = Endpoint(sess, endpoint.name).vocab()  # found through the model's vocab tag
    assert src["car"] == 8 and trg["kuruma"] == 4
    local = Endpoint(sess, "whatever", vocab_dir=prep).vocab()
    assert local == (src, trg)


def test_unknown_endpoint_is_an_input_error(sess) -> None:
    with pytest.raises(InputError, match="not found"):
        Endpoint(sess, "nope").describe()


def test_channels_from_prefix_are_the_upload_layout() -> None:
    assert Channels.from_prefix("b", "/a/b/").as_dict() == {
        "train": "s3://b/a/b/train/", "validation": "s3://b/a/b/validation/", "vocab": "s3://b/a/b/vocab/"}


class FailedEndpointClient(UpdatingClient):
    """Reports the named endpoint as Failed until it is deleted."""

    def __init__(self, real: Any, failed: str):
        super().__init__(real)
        self.failed = failed
        self.deleted: list[str] = []

    def describe_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        desc = super().describe_endpoint(**kwargs)
        if kwargs["EndpointName"] == self.failed:
            desc["EndpointStatus"] = "Failed"
            desc["FailureReason"] = "health check"
        return desc

    def delete_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.deleted.append(kwargs["EndpointName"])
        self.failed = ""
        return self._real.delete_endpoint(**kwargs)


def test_deploy_replaces_a_failed_endpoint_of_the_same_name(sess) -> None:
    sess.deploy(MODEL_DATA, endpoint_name="ep")
    fake = FailedEndpointClient(sess.sagemaker, failed="ep")
    sess._clients["sagemaker"] = fake
    endpoint = sess.deploy(MODEL_DATA, endpoint_name="ep")
    assert fake.deleted == ["ep"] and fake.updates == []
    assert endpoint.status == "InService"
    endpoints, configs, models = _names(sess)
    assert endpoints == ["ep"] and len(configs) == 1 and len(models) == 1  # the failed one's were removed
