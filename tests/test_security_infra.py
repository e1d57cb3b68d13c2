"""Infrastructure security (issue #9): KMS on by default, least-privilege statements.

Checked here (synthesizing the app once, nag off, image from the ECR repository so no Docker context):
every SageMaker job the pipeline starts encrypts volumes and outputs with the project key; the
deploy Lambda gives endpoint configs that key; every IAM statement names specific resources or
is one of the actions AWS only allows on ``*``; every ``kms:CreateGrant`` is limited to grants
for AWS resources.

Covered elsewhere (cited in RELIABILITY.md): cdk-nag AwsSolutions with zero unacknowledged
findings and a reason on every acknowledgment (``tests/test_infra_stacks.py::
test_cdk_nag_has_no_unacknowledged_findings``, ``test_every_acknowledgment_has_a_reason``),
``test_no_star_resource_except_acknowledged_actions``, ``test_pass_role_is_conditioned_on_sagemaker``,
buckets encrypted / TLS-only (``test_buckets_encrypted_versioned_private_logged``,
``test_every_bucket_denies_plain_http``).
"""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from infra_utils import WILDCARD_ONLY, iam_statements, load_deploy_function

cdk = pytest.importorskip("aws_cdk")
from aws_cdk.assertions import Template  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    from app import build_app, cdk_json_context

    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk-sec")),
                  context=cdk_json_context(nag=False, image_source="ecr"))
    stacks = build_app(app)
    return {name: Template.from_stack(stack).to_json() for name, stack in stacks.items()}


def _definition(templates) -> tuple[dict, dict]:
    (res,) = [r for r in templates["pipeline"]["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"]
    text, variables = res["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    return json.loads(text), variables


def test_every_pipeline_job_encrypts_volumes_and_outputs_with_the_project_key(templates):
    definition, variables = _definition(templates)
    assert "KmsKeyArn" in variables
    key = "${KmsKeyArn}"
    steps = {s["Name"]: s for s in definition["Steps"]}
    jobs = [s for s in steps.values() if s["Type"] in ("Processing", "Training")]
    assert len(jobs) >= 3
    for step in jobs:
        args = step["Arguments"]
        if step["Type"] == "Training":
            assert args["ResourceConfig"]["VolumeKmsKeyId"] == key, step["Name"]
            assert args["OutputDataConfig"]["KmsKeyId"] == key, step["Name"]
        else:
            assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key, step["Name"]
            assert args["ProcessingOutputConfig"]["KmsKeyId"] == key, step["Name"]


def test_deploy_function_gets_the_key_and_uses_it(templates, monkeypatch):
    (fn,) = [r for r in templates["pipeline"]["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
             and "ENDPOINT_PREFIX" in r["Properties"].get("Environment", {}).get("Variables", {})]
    assert "KMS_KEY_ARN" in fn["Properties"]["Environment"]["Variables"]

    deploy = load_deploy_function("s2s_deploy_fn_sec")
    monkeypatch.setenv("ENDPOINT_PREFIX", "s2s-dev")
    monkeypatch.setenv("KMS_KEY_ARN", "arn:aws:kms:us-east-1:123456789012:key/k")
    client = boto3.client("sagemaker", region_name="us-east-1")
    stub = Stubber(client)
    pkg = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
    stub.add_response("create_model_package", {"ModelPackageArn": pkg})
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/x"})
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/x"},
                      {"EndpointConfigName": ANY, "ProductionVariants": ANY,
                       "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k"})
    stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
    stub.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/s2s-dev-ep"})
    event = {"endpoint_name": "s2s-dev-ep", "model_package_group_name": "g", "approval_status": "Approved",
             "image_uri": "img", "model_data_url": "s3://b/m.tar.gz", "evaluation_s3_uri": "s3://b/e.json",
             "execution_role_arn": "arn:aws:iam::123456789012:role/r", "instance_type": "ml.m5.xlarge", "bleu": 20,
             "training_job_name": "pipelines-x-Train"}
    with stub:
        assert deploy.handler(event, None, sagemaker=client)["endpoint_action"] == "created"
    stub.assert_no_pending_responses()


def _statements(templates):
    for name, t in templates.items():
        for logical, st in iam_statements(t):
            yield f"{name}/{logical}", st


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_every_statement_is_scoped(templates):
    n = 0
    for where, st in _statements(templates):
        n += 1
        assert st["Effect"] == "Allow" or "Condition" in st or st.get("Principal"), (where, st)
        actions = _as_list(st["Action"])
        resources = _as_list(st.get("Resource", []))
        assert resources, (where, st)
        assert not any(a == "*" or a.endswith(":*") for a in actions), (where, actions)
        if "*" in resources:
            assert set(actions) <= WILDCARD_ONLY, (where, actions)
        if "kms:CreateGrant" in actions:
            assert st.get("Condition") == {"Bool": {"kms:GrantIsForAWSResource": "true"}}, (where, st)
    assert n > 10
