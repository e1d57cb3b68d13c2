"""The classic seq2seq notebook's own boto3 calls, unmodified, against the local stack running the
real training program and inference server (a tiny model on a tiny generated corpus)."""
from __future__ import annotations

import json
import time

import botocore.exceptions
import pytest

from s2s_aws.formats import recordio, records
from s2s_aws.formats import vocab as vocab_mod
from s2s_aws.local import LocalStack
from s2s_aws.local.corpus import write_corpus
from s2s_aws.metrics import METRIC_DEFINITIONS

pytestmark = pytest.mark.slow

BUCKET = "notebook-bucket"
PREFIX = "seq2seq/notebook"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
FAST = {"Delay": 1, "MaxAttempts": 600}
# tiny and quick: the test checks the journey, not the quality
HP = {"rnn_num_hidden": "32", "num_embed_source": "16", "num_embed_target": "16", "batch_size": "32",
      "max_num_epochs": "1", "checkpoint_frequency_num_batches": "1000", "bleu_sample_size": "0",
      "max_seq_len_source": "16", "max_seq_len_target": "16", "beam_size": "1"}


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    from s2s_aws.preprocess import preprocess
    root = tmp_path_factory.mktemp("nb")
    c = write_corpus(root / "corpus", num_train=300, num_dev=30, num_test=10, seed=3)
    preprocess(c.train_source, c.train_target, c.dev_source, c.dev_target, output_dir=root / "prep", workers=1)
    return root / "prep"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    st = LocalStack(tmp_path_factory.mktemp("state"))
    yield st
    st.stop()


@pytest.fixture(scope="module")
def clients(stack, prep):
    """boto3 clients made the plain way, with the stack's variables in the environment."""
    import boto3
    with stack.activated():
        s3, sm, rt = boto3.client("s3"), boto3.client("sagemaker"), boto3.client("runtime.sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    # the notebook's upload_to_s3: one put_object per file
    for channel, name in (("train", "train.rec"), ("validation", "val.rec"), ("vocab", "vocab.src.json"),
                          ("vocab", "vocab.trg.json")):
        with open(prep / name, "rb") as f:
            s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{channel}/{name}", Body=f)
    return s3, sm, rt


def _create_params(job_name, channels=("train", "validation", "vocab"), hyperparameters=None):
    return {
        "AlgorithmSpecification": {"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/seq2seq:1",
                                   "TrainingInputMode": "File", "MetricDefinitions": METRIC_DEFINITIONS},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/{PREFIX}/"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.p2.xlarge", "VolumeSizeInGB": 50},
        "TrainingJobName": job_name,
        "HyperParameters": hyperparameters or HP,
        "StoppingCondition": {"MaxRuntimeInSeconds": 60 * 60},
        "InputDataConfig": [{"ChannelName": c, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{PREFIX}/{c}/",
            "S3DataDistributionType": "FullyReplicated"}}} for c in channels],
    }


def test_notebook_sequence_end_to_end(clients, prep):
    s3, sm, rt = clients
    job_name = "seq2seq-en-de-" + time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime())
    sm.create_training_job(**_create_params(job_name))
    status = sm.describe_training_job(TrainingJobName=job_name)["TrainingJobStatus"]
    assert status == "InProgress"
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=job_name, WaiterConfig=FAST)
    info = sm.describe_training_job(TrainingJobName=job_name)
    assert info["TrainingJobStatus"] == "Completed", info.get("FailureReason")
    assert "validation:perplexity" in {m["MetricName"] for m in info["FinalMetricDataList"]}

    model_data = info["ModelArtifacts"]["S3ModelArtifacts"]
    sm.create_model(ModelName=job_name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": info["AlgorithmSpecification"]["TrainingImage"],
                                      "ModelDataUrl": model_data})
    config_name = job_name + "-config"
    sm.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=[{
        "InstanceType": "ml.m4.xlarge", "InitialInstanceCount": 1, "ModelName": job_name, "VariantName": "AllTraffic"}])
    endpoint_name = "Seq2SeqEndpoint-" + time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime())
    sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=config_name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint_name, WaiterConfig=FAST)
    assert sm.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"] == "InService"

    # JSON, with and without the attention matrix
    sentences = ["i have forty two dogs", "we see seven hundred and one old cars"]
    payload = {"instances": [{"data": s} for s in sentences]}
    r = rt.invoke_endpoint(EndpointName=endpoint_name, ContentType="application/json", Body=json.dumps(payload))
    preds = json.loads(r["Body"].read().decode("utf-8"))["predictions"]
    assert len(preds) == 2 and all(isinstance(p["target"], str) for p in preds)
    payload = {"instances": [{"data": sentences[0], "configuration": {"attention_matrix": "true"}}]}
    r = rt.invoke_endpoint(EndpointName=endpoint_name, ContentType="application/json", Body=json.dumps(payload))
    pred = json.loads(r["Body"].read())["predictions"][0]
    assert len(pred["matrix"]) == len(pred["target"].split())
    assert all(len(row) == len(sentences[0].split()) for row in pred["matrix"])

    # RecordIO-protobuf in and out, with the vocabularies from the prep folder
    src_vocab = vocab_mod.load_vocab(prep / "vocab.src.json")
    trg_tokens = vocab_mod.id_to_token(vocab_mod.load_vocab(prep / "vocab.trg.json"))
    body = recordio.encode_records(records.encode_ids("source", vocab_mod.encode_tokens(s.split(), src_vocab))
                                   for s in sentences)
    r = rt.invoke_endpoint(EndpointName=endpoint_name, ContentType="application/x-recordio-protobuf", Body=body)
    assert r["ContentType"].startswith("application/x-recordio-protobuf")
    outputs = [records.decode_ids(p, "target") for p in recordio.decode_records(r["Body"].read())]
    assert len(outputs) == 2
    assert [" ".join(trg_tokens[i] for i in ids) for ids in outputs] == [p["target"] for p in preds]

    # a bad request is the model's error, and the endpoint keeps serving
    with pytest.raises(botocore.exceptions.ClientError) as e:
        rt.invoke_endpoint(EndpointName=endpoint_name, ContentType="application/json", Body=b"{oops")
    assert e.value.response["Error"]["Code"] == "ModelError"
    assert e.value.response["OriginalStatusCode"] == 400

    sm.delete_endpoint(EndpointName=endpoint_name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint_name, WaiterConfig=FAST)
    sm.delete_endpoint_config(EndpointConfigName=config_name)
    sm.delete_model(ModelName=job_name)
    assert endpoint_name not in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]


def test_real_training_program_failure_reaches_failed_with_its_reason(clients):
    _, sm, _ = clients
    sm.create_training_job(**_create_params("seq2seq-no-vocab", channels=("train", "validation")))
    with pytest.raises(botocore.exceptions.WaiterError):
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="seq2seq-no-vocab", WaiterConfig=FAST)
    d = sm.describe_training_job(TrainingJobName="seq2seq-no-vocab")
    assert d["TrainingJobStatus"] == "Failed"
    assert d["FailureReason"].startswith("AlgorithmError: ")
    assert "'vocab' channel" in d["FailureReason"]


def test_real_training_program_rejects_a_bad_hyperparameter(clients):
    _, sm, _ = clients
    sm.create_training_job(**_create_params("seq2seq-bad-hp", hyperparameters={**HP, "rnn_num_hidden": "33"}))
    with pytest.raises(botocore.exceptions.WaiterError):
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="seq2seq-bad-hp", WaiterConfig=FAST)
    d = sm.describe_training_job(TrainingJobName="seq2seq-bad-hp")
    assert d["TrainingJobStatus"] == "Failed"
    assert "rnn_num_hidden" in d["FailureReason"]
