"""The SageMaker Python SDK v3 (3.27, installed in .venv), unmodified, against the local stack with its
IAM role validation on: ModelTrainer.train(wait, logs) with our image -> ModelBuilder.build/deploy ->
Endpoint.invoke -> delete (tests/clients/sdk_v3_journey.py, run once as a subprocess with only the
stack's variables as configuration); each test checks one step."""
from __future__ import annotations

import json
import sys

import pytest

from client_utils import (SAGEMAKER_CONFIG, assert_deleted_everything, bucket_and_role, prepare_corpus, readme_block,
                          run_journey, script_snippet)
from s2s_aws.local import LocalStack

pytestmark = pytest.mark.slow

SCRIPT = "sdk_v3_journey.py"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("sdk-v3-state")) as st:
        yield st


@pytest.fixture(scope="module")
def journey(stack, tmp_path_factory):
    root = tmp_path_factory.mktemp("sdk-v3")
    prep = prepare_corpus(root)
    bucket_and_role(stack)
    j = run_journey(sys.executable, SCRIPT, stack, prep, root)
    if "train" in j.steps:
        j.after["job"] = stack.client("sagemaker").describe_training_job(TrainingJobName=j.steps["train"]["job"])
    return j


def test_model_trainer_validates_the_role_and_trains_with_logs(journey):
    journey.step("train")
    job = journey.after["job"]
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["HyperParameters"]["rnn_num_hidden"] == "64"
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("/output/model.tar.gz")
    # the role check ran (SAGEMAKER_VALIDATE_ROLE is not set) and passed
    assert "Skipping IAM role validation" not in journey.output
    assert "Could not verify permissions for role" not in journey.output  # iam:SimulatePrincipalPolicy answered
    # train(logs=True) logged the training program's own lines, read back from CloudWatch Logs
    assert "#metric validation:perplexity=" in journey.output


def test_model_builder_deploys_the_trained_model(journey):
    deploy = journey.step("deploy")
    assert deploy["endpoint"] == "s2s-sdk-v3"
    assert deploy["model_data"] == journey.after["job"]["ModelArtifacts"]["S3ModelArtifacts"]


def test_endpoint_invoke_translates(journey):
    predictions = journey.step("invoke")["predictions"]
    assert len(predictions) == 1 and isinstance(predictions[0]["target"], str) and predictions[0]["target"]


def test_delete_leaves_no_endpoint_config_or_model(journey):
    assert_deleted_everything(journey)


def test_role_validation_refuses_a_role_that_does_not_trust_sagemaker(stack, monkeypatch, tmp_path):
    """The SDK's role check really runs against the local IAM: a role whose trust policy names
    another service is refused before any training job is created."""
    from sagemaker.core.helper.iam_role_resolver import RoleValidationError
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.train import ModelTrainer

    bucket, _ = bucket_and_role(stack)
    iam = stack.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName="NotForSageMaker", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    monkeypatch.delenv("SAGEMAKER_VALIDATE_ROLE", raising=False)
    (tmp_path / "sagemaker-config.yaml").write_text(SAGEMAKER_CONFIG)
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(tmp_path / "sagemaker-config.yaml"))
    with stack.activated():
        sess = Session(boto_session=stack.boto_session(), default_bucket=bucket)
        with pytest.raises(RoleValidationError):
            ModelTrainer(training_image="123456789012.dkr.ecr.us-east-1.amazonaws.com/s2s-aws-seq2seq:latest",
                         role=arn, sagemaker_session=sess)


def test_readme_v3_snippet_is_the_one_the_journey_runs():
    snippet = script_snippet(SCRIPT, "v3")
    block = readme_block("### SDK v3")
    assert block[-len(snippet):] == snippet, (
        "README.md's SDK v3 snippet differs from tests/clients/sdk_v3_journey.py (between the README markers, "
        "without the done(...) lines): copy the script's lines into the README")
