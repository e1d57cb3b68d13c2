"""Training jobs: request shape, names, waits, failures, stop, logs, retries (moto + Stubber)."""
from __future__ import annotations

import io
import json
import re
import time
import types

import pytest
from botocore.stub import Stubber
from test_sdk_support import (BUCKET, IMAGE, PREFIX, ROLE, RUN_ID, aws, make_session, prep,  # noqa: F401
                              sess, training_description)

from s2s_aws.channels import Channels
from s2s_aws.errors import HyperparameterError, InputError, TrainingJobFailed, WaitTimeout
from s2s_aws.contract.metrics import METRIC_DEFINITIONS
from s2s_aws.training import TrainingJob

CHANNELS = Channels.from_prefix(BUCKET, PREFIX)


def _capture(sess, operation: str) -> list[dict]:
    seen: list[dict] = []
    sess.sagemaker.meta.events.register(f"before-parameter-build.sagemaker.{operation}",
                                        lambda params, **_: seen.append(json.loads(json.dumps(params))))
    return seen


def _channel(name: str) -> dict:
    return {"ChannelName": name,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{PREFIX}/{name}/",
                                            "S3DataDistributionType": "FullyReplicated"}},
            "ContentType": "application/x-recordio-protobuf", "CompressionType": "None", "InputMode": "File"}


def test_create_training_job_request_snapshot(sess) -> None:
    seen = _capture(sess, "CreateTrainingJob")
    sess.train(CHANNELS, {"rnn_num_hidden": 512, "batch_size": "32"}, instance_type="ml.g5.xlarge",
               job_name="seq2seq-snapshot", spot=True, max_runtime_s=3600, max_wait_s=7200, volume_size_gb=30,
               subnets=["subnet-1"], security_group_ids=["sg-1"], network_isolation=True,
               volume_kms_key="alias/vol", output_kms_key="alias/out", tags={"team": "nlp"})
    expected = {
        "TrainingJobName": "seq2seq-snapshot",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File",
                                   "MetricDefinitions": METRIC_DEFINITIONS},
        "RoleArn": ROLE,
        "HyperParameters": {"rnn_num_hidden": "512", "batch_size": "32"},
        "InputDataConfig": [_channel("train"), _channel("validation"), _channel("vocab")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/{PREFIX}/output/", "KmsKeyId": "alias/out"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30,
                           "VolumeKmsKeyId": "alias/vol"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": False,
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": f"s3://{BUCKET}/{PREFIX}/checkpoints/seq2seq-snapshot/",
                             "LocalPath": "/opt/ml/checkpoints"},
        "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]},
        "Tags": [{"Key": "s2s-aws:run", "Value": RUN_ID}, {"Key": "team", "Value": "nlp"}],
    }
    assert seen == [expected]


def test_plain_request_has_no_spot_vpc_or_kms(sess) -> None:
    seen = _capture(sess, "CreateTrainingJob")
    sess.train(CHANNELS, {}, instance_type="ml.m5.xlarge")
    req = seen[0]
    assert req["HyperParameters"] == {}
    assert req["EnableManagedSpotTraining"] is False
    assert "MaxWaitTimeInSeconds" not in req["StoppingCondition"]
    for key in ("CheckpointConfig", "VpcConfig"):
        assert key not in req
    assert "KmsKeyId" not in req["OutputDataConfig"]


def test_builtin_image_request_omits_metric_definitions(sess) -> None:
    seen = _capture(sess, "CreateTrainingJob")
    sess.image_uri = None
    sess.train(CHANNELS, {}, builtin=True)
    spec = seen[0]["AlgorithmSpecification"]
    assert "MetricDefinitions" not in spec
    assert spec["TrainingImage"].endswith(".amazonaws.com/seq2seq:1")


def test_job_names_are_unique_readable_and_short(sess) -> None:
    a = sess.train(CHANNELS, {}, base_job_name="my-nmt")
    b = sess.train(CHANNELS, {}, base_job_name="my-nmt")
    pattern = re.compile(r"^my-nmt-\d{8}-\d{6}-[0-9a-f]{4}$")
    assert pattern.match(a.name) and pattern.match(b.name) and a.name != b.name
    long = sess.train(CHANNELS, {}, base_job_name="x" * 100 + "_weird name")
    assert len(long.name) <= 63


def test_bad_hyperparameters_fail_before_any_aws_call(sess) -> None:
    seen = _capture(sess, "CreateTrainingJob")
    with pytest.raises(HyperparameterError):
        sess.train(CHANNELS, {"rnn_num_hidden": "lots"})
    with pytest.raises(HyperparameterError):
        sess.train(CHANNELS, {"no_such_name": 1})
    assert seen == []


@pytest.mark.parametrize("kwargs, match", [
    ({"spot": True, "max_runtime_s": 3600, "max_wait_s": 60}, "max_wait_s"),
    ({"max_wait_s": 7200}, "spot"),
    ({"instance_type": "g5.xlarge"}, "instance type"),
    ({"subnets": ["subnet-1"]}, "security_group_ids"),
])
def test_bad_config_is_an_input_error(sess, kwargs, match) -> None:
    with pytest.raises(InputError, match=match):
        sess.train(CHANNELS, {}, **kwargs)


def test_channels_must_be_complete_s3_uris(sess) -> None:
    with pytest.raises(InputError, match="vocab"):
        sess.train({"train": "s3://b/t/", "validation": "s3://b/v/"}, {})
    with pytest.raises(InputError, match="s3://"):
        sess.train({"train": "/tmp/t", "validation": "s3://b/v/", "vocab": "s3://b/x/"}, {})


def test_missing_role_is_an_input_error(aws) -> None:
    s = make_session(aws, role_arn=None)
    with pytest.raises(InputError, match="role"):
        s.train(CHANNELS, {})


def test_upload_train_wait_attach_with_moto(sess, prep) -> None:
    channels = sess.upload_channels(prep)
    job = sess.train(channels, {"rnn_num_hidden": 64})
    desc = job.wait(timeout=60)
    assert desc["TrainingJobStatus"] == "Completed"
    assert job.model_artifacts.startswith("s3://")
    again = sess.attach(job.name)
    assert again.describe()["HyperParameters"] == {"rnn_num_hidden": "64"}
    assert again.vocab_uri == channels.vocab
    assert sess.sagemaker.list_tags(ResourceArn=desc["TrainingJobArn"])["Tags"] == [
        {"Key": "s2s-aws:run", "Value": RUN_ID}]


def test_attach_unknown_job_is_an_input_error(sess) -> None:
    with pytest.raises(InputError, match="not found"):
        sess.attach("no-such-job")


def _stubbed(sess) -> Stubber:
    stub = Stubber(sess.sagemaker)
    stub.activate()
    return stub


def test_failed_job_raises_with_reason_logs_and_console(sess) -> None:
    stub = _stubbed(sess)
    name = "seq2seq-failing"
    stub.add_response("describe_training_job", training_description(name, "InProgress", secondary="Downloading"),
                      {"TrainingJobName": name})
    stub.add_response("describe_training_job", training_description(
        name, "Failed", reason="AlgorithmError: vocab channel is missing vocab.trg.json", secondary="Failed"),
        {"TrainingJobName": name})
    job = TrainingJob(sess, name)
    with pytest.raises(TrainingJobFailed) as info:
        job.wait(timeout=600)
    err = info.value
    assert err.status == "Failed" and err.reason == "AlgorithmError: vocab channel is missing vocab.trg.json"
    assert "vocab.trg.json" in str(err) and "/aws/sagemaker/TrainingJobs" in str(err)
    assert err.log_url and "cloudwatch" in err.log_url and name in err.log_url
    assert err.console_url.endswith(f"#/jobs/{name}")
    assert err.log_stream_prefix == f"{name}/"
    assert sess.fake_clock.sleeps == [1.0]
    stub.assert_no_pending_responses()


def test_stopped_job_is_a_failure_unless_allowed(sess) -> None:
    stub = _stubbed(sess)
    name = "seq2seq-stopped"
    for _ in range(2):
        stub.add_response("describe_training_job", training_description(name, "Stopped", secondary="Stopped"),
                          {"TrainingJobName": name})
    job = TrainingJob(sess, name)
    with pytest.raises(TrainingJobFailed, match="allow_stopped") as info:
        job.wait()
    assert info.value.status == "Stopped"
    assert job.wait(allow_stopped=True)["TrainingJobStatus"] == "Stopped"


def test_wait_times_out_with_backoff_and_says_how_to_reattach(sess) -> None:
    stub = _stubbed(sess)
    name = "seq2seq-slow"
    for _ in range(6):
        stub.add_response("describe_training_job", training_description(name, "InProgress"), {"TrainingJobName": name})
    with pytest.raises(WaitTimeout) as info:
        TrainingJob(sess, name).wait(timeout=10)
    msg = str(info.value)
    assert "keeps running" in msg and f"s2s-aws status {name} --wait" in msg and f"s2s-aws stop {name}" in msg
    assert sess.fake_clock.sleeps == [1.0, 2.0, 4.0, 3.0]  # backoff, last delay clipped to the timeout


def test_metrics_come_from_final_metric_data(sess) -> None:
    stub = _stubbed(sess)
    name = "seq2seq-done"
    stub.add_response("describe_training_job", training_description(
        name, "Completed", metrics={"validation:bleu": 23.5, "validation:perplexity": 4.25}), {"TrainingJobName": name})
    assert TrainingJob(sess, name).metrics() == {"validation:bleu": 23.5, "validation:perplexity": 4.25}


def test_stop_calls_stop_training_job_and_tolerates_finished_jobs(sess) -> None:
    stub = _stubbed(sess)
    stub.add_response("stop_training_job", {}, {"TrainingJobName": "running"})
    TrainingJob(sess, "running").stop()
    stub.add_client_error("stop_training_job", "ValidationException", "The job status is Completed",
                          expected_params={"TrainingJobName": "finished"})
    stub.add_response("describe_training_job", training_description("finished", "Completed"),
                      {"TrainingJobName": "finished"})
    TrainingJob(sess, "finished").stop()  # no error: nothing to stop
    stub.assert_no_pending_responses()


def test_stop_wait_allows_stopped(sess) -> None:
    stub = _stubbed(sess)
    stub.add_response("stop_training_job", {}, {"TrainingJobName": "j"})
    stub.add_response("describe_training_job", training_description("j", "Stopping"), {"TrainingJobName": "j"})
    stub.add_response("describe_training_job", training_description("j", "Stopped"), {"TrainingJobName": "j"})
    TrainingJob(sess, "j").stop(wait=True)
    stub.assert_no_pending_responses()


def test_ctrl_c_explains_how_to_reattach_and_does_not_stop(sess, capsys) -> None:
    stub = _stubbed(sess)
    name = "seq2seq-interrupted"
    stub.add_response("describe_training_job", training_description(name, "InProgress"), {"TrainingJobName": name})

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    sess.clock.sleep = interrupt
    with pytest.raises(KeyboardInterrupt):
        TrainingJob(sess, name).wait()
    err = capsys.readouterr().err
    assert "NOT stopped" in err and f"s2s-aws status {name} --wait" in err and f"s2s-aws stop {name}" in err
    stub.assert_no_pending_responses()  # no stop_training_job was called


def test_wait_streams_logs_from_every_algo_stream(sess) -> None:
    job = sess.train(CHANNELS, {})
    logs = sess.client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    now = int(time.time() * 1000)  # CloudWatch (and moto) drop events older than 14 days
    logs.create_log_group(logGroupName=group)
    for host, lines in (("algo-1", ["epoch 1", "#metric validation:bleu=1.0"]), ("algo-2", ["hello from 2"])):
        stream = f"{job.name}/{host}-1700000000"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)])
    other = "someone-else/algo-1-1"
    logs.create_log_stream(logGroupName=group, logStreamName=other)
    logs.put_log_events(logGroupName=group, logStreamName=other, logEvents=[{"timestamp": now, "message": "no"}])
    got: list[tuple[str, str]] = []
    job.wait(logs=True, log_sink=lambda s, m: got.append((s.split("/")[1].split("-1700")[0], m)))
    assert sorted(got) == [("algo-1", "#metric validation:bleu=1.0"), ("algo-1", "epoch 1"), ("algo-2", "hello from 2")]
    assert len(job.logs()) == 3


def test_logs_before_the_group_exists_are_empty(sess) -> None:
    job = sess.train(CHANNELS, {})
    assert job.logs() == []


def test_throttling_is_retried_by_botocore_standard_mode(aws, monkeypatch) -> None:
    from botocore.awsrequest import AWSResponse

    import botocore.endpoint

    sleeps: list[float] = []
    fake_time = types.SimpleNamespace(**{k: getattr(botocore.endpoint.time, k) for k in ("time", "monotonic")},
                                      sleep=sleeps.append)
    monkeypatch.setattr(botocore.endpoint, "time", fake_time)
    sess = make_session(aws)
    desc = training_description("throttled", "Completed")
    desc["CreationTime"] = 1704067200
    calls = {"n": 0}

    class Raw(io.BytesIO):
        def stream(self, **_):
            yield self.getvalue()

    def respond(request, **_):
        calls["n"] += 1
        if calls["n"] <= 2:
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "ThrottlingException"}, Raw(body))
        return AWSResponse(request.url, 200, {}, Raw(json.dumps(desc).encode()))

    sess.sagemaker.meta.events.register_first("before-send.sagemaker.DescribeTrainingJob", respond)
    assert TrainingJob(sess, "throttled").describe()["TrainingJobStatus"] == "Completed"
    assert calls["n"] == 3 and len(sleeps) == 2
    assert sess.sagemaker.meta.config.retries["mode"] == "standard"
