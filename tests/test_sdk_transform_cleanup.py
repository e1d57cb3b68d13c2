"""Batch transform (moto) and cleanup by run tag / age (moto)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from test_sdk_support import BUCKET, PREFIX, RUN_ID, aws, make_session, sess  # noqa: F401

from s2s_aws.cleanup import cleanup, find_resources, parse_age
from s2s_aws.errors import InputError, TransformJobFailed
from s2s_aws.transform import TransformJob, to_jsonlines, upload_jsonlines

MODEL_DATA = f"s3://{BUCKET}/{PREFIX}/output/job/output/model.tar.gz"


def _transform_request(sess) -> list[dict]:
    seen: list[dict] = []
    sess.sagemaker.meta.events.register("before-parameter-build.sagemaker.CreateTransformJob",
                                        lambda params, **_: seen.append(json.loads(json.dumps(params))))
    return seen


def test_transform_request_reads_jsonlines_line_by_line(sess) -> None:
    seen = _transform_request(sess)
    from s2s_aws.hosting import create_model

    model = create_model(sess, MODEL_DATA)
    input_uri = upload_jsonlines(sess, ["can you drive a car ?", "i am a student ."])
    tj = sess.transform(model, input_uri, job_name="tj-1", instance_type="ml.m5.xlarge")
    assert seen == [{
        "TransformJobName": "tj-1", "ModelName": model, "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 6,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                           "ContentType": "application/jsonlines", "SplitType": "Line", "CompressionType": "None"},
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/{PREFIX}/transform/tj-1/output/",
                            "Accept": "application/jsonlines", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "Tags": [{"Key": "s2s-aws:run", "Value": RUN_ID}],
    }]
    bucket_key = input_uri[len(f"s3://{BUCKET}/"):] + "input.jsonl"
    body = sess.s3.get_object(Bucket=BUCKET, Key=bucket_key)["Body"].read()
    assert body == to_jsonlines(["can you drive a car ?", "i am a student ."])
    assert [json.loads(line)["source"] for line in body.decode().splitlines()][1] == "i am a student ."
    assert tj.wait()["TransformJobStatus"] == "Completed"


def test_transform_results_are_read_in_order(sess) -> None:
    from s2s_aws.hosting import create_model

    tj = sess.transform(create_model(sess, MODEL_DATA), f"s3://{BUCKET}/in/", job_name="tj-2")
    tj.wait()
    out = f"{PREFIX}/transform/tj-2/output/"
    sess.s3.put_object(Bucket=BUCKET, Key=out + "b.jsonl.out", Body=b'{"target": "three"}\n')
    sess.s3.put_object(Bucket=BUCKET, Key=out + "a.jsonl.out", Body=b'{"target": "one"}\n{"target": "two"}\n')
    assert tj.targets() == ["one", "two", "three"]


def test_transform_results_keep_lines_with_unicode_line_separators(sess) -> None:
    # the server writes targets with ensure_ascii=False: U+2028, U+0085 and form feeds stay unescaped
    # inside the JSON strings, and they do not end a jsonlines record (only "\n" does)
    from s2s_aws.hosting import create_model

    tj = sess.transform(create_model(sess, MODEL_DATA), f"s3://{BUCKET}/in/", job_name="tj-3")
    tj.wait()
    targets = ["a\u2028b", "c\x85d\x0ce", "f"]
    body = "".join(json.dumps({"target": t}, ensure_ascii=False) + "\r\n" for t in targets).encode("utf-8")
    sess.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/transform/tj-3/output/in.jsonl.out", Body=body)
    assert tj.targets() == targets


def test_transform_from_a_training_job(sess) -> None:
    from s2s_aws.channels import Channels

    job = sess.train(Channels.from_prefix(BUCKET, PREFIX), {})
    job.wait()
    tj = job.transform(f"s3://{BUCKET}/in/")
    desc = tj.describe()
    assert desc["ModelName"].startswith("seq2seq-") and desc["TransformJobStatus"] == "Completed"


def test_failed_transform_raises(sess) -> None:
    from botocore.stub import Stubber

    stub = Stubber(sess.sagemaker)
    stub.add_response("describe_transform_job", {
        "TransformJobName": "tj", "TransformJobArn": "arn:aws:sagemaker:us-east-1:123456789012:transform-job/tj",
        "TransformJobStatus": "Failed", "FailureReason": "ClientError: line 3 is not JSON", "ModelName": "m",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}}},
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "CreationTime": dt.datetime(2024, 1, 1)}, {"TransformJobName": "tj"})
    with stub, pytest.raises(TransformJobFailed, match="line 3 is not JSON"):
        TransformJob(sess, "tj").wait()


def test_no_sentences_is_an_input_error(sess) -> None:
    with pytest.raises(InputError):
        upload_jsonlines(sess, [])


# ---------------------------------------------------------------- cleanup
def _deploy_two_runs(aws):
    mine = make_session(aws, run_id="run-mine")
    theirs = make_session(aws, run_id="run-theirs")
    mine.deploy(MODEL_DATA, endpoint_name="ep-mine")
    theirs.deploy(MODEL_DATA, endpoint_name="ep-theirs")
    # a resource without the s2s-aws tag must never be touched
    aws.client("sagemaker").create_model(ModelName="untagged", ExecutionRoleArn=mine.role_arn,
                                         PrimaryContainer={"Image": mine.image_uri})
    return mine


def _inventory(aws) -> set[str]:
    sm = aws.client("sagemaker")
    return ({f"endpoint/{e['EndpointName']}" for e in sm.list_endpoints()["Endpoints"]}
            | {f"model/{m['ModelName']}" for m in sm.list_models()["Models"]}
            | {f"endpoint-config/{c['EndpointConfigName']}" for c in sm.list_endpoint_configs()["EndpointConfigs"]})


def test_cleanup_dry_run_lists_a_run_and_changes_nothing(aws) -> None:
    mine = _deploy_two_runs(aws)
    before = _inventory(aws)
    found = cleanup(mine, run_id="run-mine", dry_run=True)
    assert sorted(r.kind for r in found) == ["endpoint", "endpoint-config", "model"]
    assert {r.run_id for r in found} == {"run-mine"} and not any(r.done for r in found)
    assert _inventory(aws) == before


def test_cleanup_by_run_removes_only_that_run(aws) -> None:
    mine = _deploy_two_runs(aws)
    removed = mine.cleanup(run_id="run-mine")
    assert all(r.done for r in removed) and len(removed) == 3
    left = _inventory(aws)
    assert "endpoint/ep-theirs" in left and "model/untagged" in left and "endpoint/ep-mine" not in left
    assert len([x for x in left if x.startswith("model/")]) == 2


def test_cleanup_by_age_only_touches_tagged_resources(aws) -> None:
    mine = _deploy_two_runs(aws)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    assert find_resources(mine, older_than="7d") == []  # everything was just created
    old = find_resources(mine, older_than="7d", now=future)
    assert {r.run_id for r in old} == {"run-mine", "run-theirs"} and "untagged" not in {r.name for r in old}
    assert len(old) == 6


def test_cleanup_refuses_to_delete_everything_and_checks_input(sess) -> None:
    with pytest.raises(InputError, match="run id or an age"):
        cleanup(sess)
    with pytest.raises(InputError, match="age"):
        cleanup(sess, older_than="soon")
    with pytest.raises(InputError, match="kinds"):
        cleanup(sess, run_id="x", kinds=["bucket"])


def test_parse_age() -> None:
    assert parse_age("7d") == dt.timedelta(days=7)
    assert parse_age("90m") == dt.timedelta(minutes=90)
    assert parse_age(30) == dt.timedelta(seconds=30)
    assert parse_age("2w") == dt.timedelta(weeks=2)


def test_deleting_something_already_on_its_way_out_is_not_an_error() -> None:
    from botocore.exceptions import ClientError

    from s2s_aws.errors import AWSOperationError
    from s2s_aws.hosting import _delete_quietly

    def being_deleted(**_):
        raise ClientError({"Error": {"Code": "ValidationException",
                                     "Message": 'Cannot delete endpoint "x": it is already being deleted.'}},
                          "DeleteEndpoint")

    def denied(**_):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DeleteEndpoint")

    assert _delete_quietly(being_deleted, EndpointName="x") is False
    with pytest.raises(AWSOperationError, match="credentials/role"):
        _delete_quietly(denied, EndpointName="x")
