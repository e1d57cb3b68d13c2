"""The pipeline's register-and-deploy Lambda (infra/s2s_infra/functions/deploy/index.py), stubbed."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber
from infra_utils import load_deploy_function

@pytest.fixture(scope="module")
def deploy():
    return load_deploy_function()


@pytest.fixture()
def sm(monkeypatch):
    monkeypatch.setenv("ENDPOINT_PREFIX", "s2s-dev-")
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


PKG = "arn:aws:sagemaker:us-east-1:111122223333:model-package/s2s-dev-models/3"


def _event(**kw):
    event = {"model_data_url": "s3://art/pipeline/models/job/output/model.tar.gz", "image_uri": "img:1",
             "execution_role_arn": "arn:aws:iam::111122223333:role/exec",
             "model_package_group_name": "s2s-dev-models", "approval_status": "Approved",
             "endpoint_name": "s2s-dev-endpoint", "instance_type": "ml.g5.xlarge", "instance_count": 1,
             "bleu": 23.4, "evaluation_s3_uri": "s3://art/pipeline/evaluation/job/evaluation.json",
             "training_job_name": "pipelines-abc-Train"}
    event.update(kw)
    return event


def _register(stub, approval):
    stub.add_response("create_model_package", {"ModelPackageArn": PKG}, {
        "ModelPackageGroupName": "s2s-dev-models", "ModelPackageDescription": ANY,
        "InferenceSpecification": ANY, "ModelMetrics": ANY,
        "CustomerMetadataProperties": {"bleu": "23.4", "training_job_name": "pipelines-abc-Train"},
        "ModelApprovalStatus": approval})


def _model_and_config(stub):
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:111122223333:model/x"},
                      {"ModelName": ANY, "ExecutionRoleArn": "arn:aws:iam::111122223333:role/exec",
                       "Containers": [{"ModelPackageName": PKG}], "EnableNetworkIsolation": True})
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/x"},
                      {"EndpointConfigName": ANY, "ProductionVariants": ANY})


def test_creates_endpoint_when_missing(deploy, sm):
    client, stub = sm
    _register(stub, "Approved")
    _model_and_config(stub)
    stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
    stub.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/s2s-dev-endpoint"},
                      {"EndpointName": "s2s-dev-endpoint", "EndpointConfigName": ANY})
    out = deploy.handler(_event(), None, sagemaker=client)
    assert out == {"model_package_arn": PKG, "endpoint_name": "s2s-dev-endpoint", "endpoint_action": "created"}


def test_updates_existing_endpoint(deploy, sm):
    client, stub = sm
    _register(stub, "Approved")
    _model_and_config(stub)
    stub.add_response("describe_endpoint", {
        "EndpointName": "s2s-dev-endpoint", "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/s2s-dev-endpoint",
        "EndpointStatus": "InService", "CreationTime": "2025-01-01", "LastModifiedTime": "2025-01-01"},
        {"EndpointName": "s2s-dev-endpoint"})
    stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/s2s-dev-endpoint"},
                      {"EndpointName": "s2s-dev-endpoint", "EndpointConfigName": ANY})
    assert deploy.handler(_event(), None, sagemaker=client)["endpoint_action"] == "updated"


def test_pending_approval_registers_only(deploy, sm):
    client, stub = sm
    _register(stub, "PendingManualApproval")
    out = deploy.handler(_event(approval_status="PendingManualApproval"), None, sagemaker=client)
    assert out["endpoint_action"] == "none"


def test_endpoint_outside_the_project_prefix_is_refused(deploy, sm):
    client, _ = sm
    with pytest.raises(ValueError, match="start with 's2s-dev-'"):
        deploy.handler(_event(endpoint_name="prod-endpoint"), None, sagemaker=client)


def test_missing_argument_is_named(deploy, sm):
    client, _ = sm
    with pytest.raises(ValueError, match="model_data_url"):
        deploy.handler(_event(model_data_url=""), None, sagemaker=client)
