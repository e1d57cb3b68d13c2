"""The SageMaker Python SDK v2 (2.257), unmodified, in its own venv, against the local stack: the classic
notebook's journey (tests/clients/sdk_v2_journey.py) with the built-in seq2seq image URI and the
notebook's hyperparameters: fit(logs=True) -> attach -> TrainingJobAnalytics -> deploy -> predict ->
batch transform -> delete. The journey runs once; each test checks one of its steps."""
from __future__ import annotations

import json

import pytest

from client_utils import (assert_deleted_everything, bucket_and_role, prepare_corpus, readme_block, run_journey,
                          script_snippet)
from client_venvs import client_venv
from s2s_aws.local import LocalStack

pytestmark = pytest.mark.slow

SCRIPT = "sdk_v2_journey.py"
# the classic notebook's hyperparameters (SageMaker-Seq2Seq-Translation-English-German), less max_num_batches,
# which its comment calls a demo setting ("Remove the above parameter if you want a better model")
NOTEBOOK_HP = {"max_seq_len_source": "60", "max_seq_len_target": "60", "optimized_metric": "bleu",
               "batch_size": "64", "checkpoint_frequency_num_batches": "1000", "rnn_num_hidden": "512",
               "num_layers_encoder": "1", "num_layers_decoder": "1", "num_embed_source": "512",
               "num_embed_target": "512", "checkpoint_threshold": "3"}


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    python = client_venv("sdk-v2") / "python"  # built once, cached in .venv-clients/ across runs
    root = tmp_path_factory.mktemp("sdk-v2")
    prep = prepare_corpus(root)
    with LocalStack(root / "state") as stack:
        bucket, _ = bucket_and_role(stack)
        j = run_journey(python, SCRIPT, stack, prep, root)
        if "fit" in j.steps:
            j.after["job"] = stack.client("sagemaker").describe_training_job(TrainingJobName=j.steps["fit"]["job"])
        j.after["bucket"] = bucket
    return j


def test_fit_trains_the_notebook_hyperparameters_and_streams_the_logs(journey):
    fit = journey.step("fit")
    job = journey.after["job"]
    assert job["TrainingJobStatus"] == "Completed"
    assert {k: job["HyperParameters"][k] for k in NOTEBOOK_HP} == NOTEBOOK_HP
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith("/seq2seq:1")  # the built-in's URI
    assert fit["model_data"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert fit["model_data"].startswith(f"s3://{journey.after['bucket']}/seq2seq/sdk-v2/output/")
    # logs=True printed the training program's own lines, read back from CloudWatch Logs
    assert "#metric validation:bleu=" in journey.output
    assert "Completed - Training job completed" in journey.output


def test_attach_rebuilds_the_estimator_from_describe_training_job(journey):
    assert journey.step("attach")["model_data"] == journey.step("fit")["model_data"]


def test_training_job_analytics_dataframe_has_the_builtin_metrics(journey):
    analytics = journey.step("analytics")
    assert analytics["rows"] > 0
    assert {"validation:bleu", "validation:perplexity"} <= set(analytics["metric_names"])


def test_deploy_and_predict_json(journey):
    predictions = journey.step("predict")["result"]["predictions"]
    assert len(predictions) == 2
    assert all(isinstance(p["target"], str) and p["target"] for p in predictions)


def test_batch_transform_jsonlines(journey):
    lines = journey.step("transform")["output"].splitlines()
    assert len(lines) == 2
    assert all(json.loads(ln)["target"] for ln in lines)


def test_delete_leaves_no_endpoint_config_or_model(journey):
    assert_deleted_everything(journey)


def test_readme_v2_snippet_is_the_one_the_journey_runs():
    snippet = script_snippet(SCRIPT, "v2")
    block = readme_block("### SDK v2")
    assert block[-len(snippet):] == snippet, (
        "README.md's SDK v2 snippet differs from tests/clients/sdk_v2_journey.py (between the README markers, "
        "without the done(...) lines): copy the script's lines into the README")
