"""The classic seq2seq notebook's training job ("SageMaker-Seq2Seq-Translation-English-German"), with
its exact hyperparameter dict, trains to Completed in local mode: the real training program, a tiny
generated corpus.

Only ``max_num_batches`` is changed, where the notebook's own comment allows it ("This is just for
demo purposes. Remove the above parameter if you want a better model."); every other value,
sizes included, is the notebook's. The notebook sets ``optimized_metric=bleu`` and leaves
``bleu_sample_size`` at its default 0, which the built-in accepts (BLEU on the whole validation set).
"""
from __future__ import annotations

import time

import pytest

from s2s_aws.contract.hyperparameters import Hyperparameters
from s2s_aws.local import LocalStack
from s2s_aws.local.corpus import write_corpus
from s2s_aws.contract.metrics import parse_metric_line

pytestmark = pytest.mark.slow

#: the notebook's dict, verbatim (its comments kept)
NOTEBOOK_HYPERPARAMETERS = {
    # Please refer to the documentation for complete list of parameters
    "max_seq_len_source": "60",
    "max_seq_len_target": "60",
    "optimized_metric": "bleu",
    "batch_size": "64",  # Please use a larger batch size (256 or 512) if using ml.p2.8xlarge or ml.p2.16xlarge
    "checkpoint_frequency_num_batches": "1000",
    "rnn_num_hidden": "512",
    "num_layers_encoder": "1",
    "num_layers_decoder": "1",
    "num_embed_source": "512",
    "num_embed_target": "512",
    "checkpoint_threshold": "3",
    "max_num_batches": "2100",
    # Training will stop after 2100 iterations/batches.
    # This is just for demo purposes. Remove the above parameter if you want a better model.
}
#: what the test runs: the notebook's dict with only the demo limit shrunk
HYPERPARAMETERS = {**NOTEBOOK_HYPERPARAMETERS, "max_num_batches": "6"}

BUCKET = "notebook-hp-bucket"
PREFIX = "sagemaker/DEMO-seq2seq"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def test_only_the_demo_limit_differs_from_the_notebook():
    assert {k for k in NOTEBOOK_HYPERPARAMETERS if NOTEBOOK_HYPERPARAMETERS[k] != HYPERPARAMETERS[k]} \
        == {"max_num_batches"}
    assert Hyperparameters.from_strings(NOTEBOOK_HYPERPARAMETERS).to_strings() == NOTEBOOK_HYPERPARAMETERS


def test_the_notebooks_training_job_completes_in_local_mode(tmp_path):
    import boto3

    from s2s_aws.preprocess import preprocess

    corpus = write_corpus(tmp_path / "corpus", num_train=200, num_dev=20, num_test=5, seed=5)
    prep = tmp_path / "prep"
    preprocess(corpus.train_source, corpus.train_target, corpus.dev_source, corpus.dev_target,
               output_dir=prep, workers=1)
    lines: list[str] = []
    with LocalStack(tmp_path / "state", echo=lines.append) as stack, stack.activated():
        s3, sm = boto3.client("s3"), boto3.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        for channel, name in (("train", "train.rec"), ("validation", "val.rec"), ("vocab", "vocab.src.json"),
                              ("vocab", "vocab.trg.json")):
            s3.upload_file(str(prep / name), BUCKET, f"{PREFIX}/{channel}/{name}")
        job_name = "seq2seq-en-de-p2-xlarge-" + time.strftime("%Y-%m-%d-%H", time.gmtime())
        # the notebook's create_training_job_request, with its own image, instance and channels
        sm.create_training_job(**{
            "AlgorithmSpecification": {
                "TrainingImage": "811284229777.dkr.ecr.us-east-1.amazonaws.com/seq2seq:1",
                "TrainingInputMode": "File",
            },
            "RoleArn": ROLE,
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/{PREFIX}/"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.p2.xlarge", "VolumeSizeInGB": 50},
            "TrainingJobName": job_name,
            "HyperParameters": HYPERPARAMETERS,
            "StoppingCondition": {"MaxRuntimeInSeconds": 48 * 3600},
            "InputDataConfig": [
                {"ChannelName": channel, "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{PREFIX}/{channel}/",
                    "S3DataDistributionType": "FullyReplicated"}}}
                for channel in ("train", "vocab", "validation")],
        })
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName=job_name, WaiterConfig={"Delay": 1, "MaxAttempts": 900})
        info = sm.describe_training_job(TrainingJobName=job_name)
    assert info["TrainingJobStatus"] == "Completed", info.get("FailureReason")
    log = "\n".join(lines)
    assert log.count("whole validation set") == 1, log[-3000:]          # said once, at start
    bleu = [m for m in map(parse_metric_line, lines) if m and m[0] == "validation:bleu"]
    assert len(bleu) == 1                                                # the final checkpoint, on all 20 pairs
