"""``s2s-aws pipeline`` against a stubbed SageMaker client (moto has no pipeline execution steps)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber

from s2s_aws.cli import main
from s2s_aws.cli import pipeline as cli_pipeline

PIPELINE = "s2s-dev-pipeline"
ARN = "arn:aws:sagemaker:us-east-1:111122223333:pipeline/s2s-dev-pipeline/execution/abc123"
NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)


@pytest.fixture()
def stubbed(monkeypatch):
    client = boto3.client("sagemaker", region_name="us-east-1")
    stub = Stubber(client)
    monkeypatch.setattr(cli_pipeline, "_sagemaker_client", lambda args: client)
    with stub:
        yield stub
    stub.assert_no_pending_responses()


def _describe(stub, status, reason=None):
    resp = {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": status}
    if reason:
        resp["FailureReason"] = reason
    stub.add_response("describe_pipeline_execution", resp, {"PipelineExecutionArn": ARN})


def _steps(stub, steps):
    items = []
    for name, status, *reason in steps:
        item = {"StepName": name, "StepStatus": status, "StartTime": NOW}
        if reason:
            item["FailureReason"] = reason[0]
        items.append(item)
    stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": items},
                      {"PipelineExecutionArn": ARN, "SortOrder": "Ascending"})


def _start(stub, params):
    expected = {"PipelineName": PIPELINE}
    if params:
        expected["PipelineParameters"] = [{"Name": k, "Value": v} for k, v in params.items()]
    stub.add_response("start_pipeline_execution", {"PipelineExecutionArn": ARN}, expected)


def test_start_wait_success(stubbed, capsys):
    _start(stubbed, {"DataVersion": "sha1", "MinBleu": "20"})
    _describe(stubbed, "Executing")
    _steps(stubbed, [("Preprocess", "Executing")])
    _describe(stubbed, "Succeeded")
    _steps(stubbed, [("Preprocess", "Succeeded"), ("Train", "Succeeded"), ("Evaluate", "Succeeded"),
                     ("CheckBleu", "Succeeded"), ("RegisterAndDeploy", "Succeeded")])
    rc = main(["--json", "pipeline", "start", "--pipeline-name", PIPELINE, "--param", "DataVersion=sha1",
               "--param", "MinBleu=20", "--wait", "--poll", "0"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["status"] == "Succeeded" and out["quality_gate_failed"] is False
    assert [s["name"] for s in out["steps"]][-1] == "RegisterAndDeploy"


def test_start_wait_quality_gate_failure_exits_1(stubbed, capsys):
    _start(stubbed, {})
    reason = "Quality gate failed: BLEU 3.2 is below MinBleu 10.0"
    _describe(stubbed, "Failed", reason)
    _steps(stubbed, [("Preprocess", "Succeeded"), ("Train", "Succeeded"), ("Evaluate", "Succeeded"),
                     ("CheckBleu", "Succeeded"), ("BleuBelowThreshold", "Failed", reason)])
    rc = main(["pipeline", "start", "--pipeline-name", PIPELINE, "--wait", "--poll", "0"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "quality gate failed" in out and "BLEU 3.2" in out


def test_start_wait_job_failure_exits_1_with_reason(stubbed, capsys):
    _start(stubbed, {})
    _describe(stubbed, "Failed")
    _steps(stubbed, [("Preprocess", "Succeeded"), ("Train", "Failed", "ClientError: AlgorithmError: out of memory")])
    rc = main(["--json", "pipeline", "start", "--pipeline-name", PIPELINE, "--wait", "--poll", "0"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert out["quality_gate_failed"] is False
    assert "out of memory" in out["failure_reason"]


def test_start_without_wait_prints_the_arn(stubbed, capsys):
    _start(stubbed, {"BatchSize": "32"})
    assert main(["pipeline", "start", "--pipeline-name", PIPELINE, "--param", "BatchSize=32"]) == 0
    assert capsys.readouterr().out.strip() == ARN


def test_bad_param_exits_2_before_any_call(stubbed, capsys):
    # no stubbed response: a call would fail the Stubber
    assert main(["pipeline", "start", "--pipeline-name", PIPELINE, "--param", "BatchSize=-1"]) == 2
    assert main(["pipeline", "start", "--pipeline-name", PIPELINE, "--param", "oops"]) == 2
    assert "batch_size" in capsys.readouterr().err


def test_status_of_latest_execution(stubbed, capsys):
    stubbed.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [{"PipelineExecutionArn": ARN}]},
                         {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending",
                          "MaxResults": 1})
    _describe(stubbed, "Executing")
    _steps(stubbed, [("Preprocess", "Succeeded"), ("Train", "Executing")])
    assert main(["pipeline", "status", "--pipeline-name", PIPELINE]) == 0
    out = capsys.readouterr().out
    assert "Executing" in out and "Train" in out


def test_status_of_failed_execution_exits_1(stubbed, capsys):
    _describe(stubbed, "Stopped")
    _steps(stubbed, [("Preprocess", "Stopped")])
    assert main(["--json", "pipeline", "status", ARN]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "Stopped"


def test_status_without_executions_is_bad_input(stubbed, capsys):
    stubbed.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": []},
                         {"PipelineName": PIPELINE, "SortBy": "CreationTime", "SortOrder": "Descending",
                          "MaxResults": 1})
    assert main(["pipeline", "status", "--pipeline-name", PIPELINE]) == 2
    assert "no executions" in capsys.readouterr().err


@pytest.mark.parametrize("exists", [False, True])
def test_upsert_creates_or_updates(stubbed, capsys, exists):
    if exists:
        stubbed.add_response("describe_pipeline", {"PipelineName": PIPELINE}, {"PipelineName": PIPELINE})
    else:
        stubbed.add_client_error("describe_pipeline", "ResourceNotFound", "Pipeline does not exist")
    expected = {"PipelineName": PIPELINE, "PipelineDefinition": ANY, "PipelineDescription": ANY,
                "RoleArn": "arn:aws:iam::111122223333:role/pipe"}
    stubbed.add_response("update_pipeline" if exists else "create_pipeline",
                         {"PipelineArn": f"arn:aws:sagemaker:us-east-1:111122223333:pipeline/{PIPELINE}"}, expected)
    rc = main(["--json", "pipeline", "upsert", "--pipeline-name", PIPELINE,
               "--role-arn", "arn:aws:iam::111122223333:role/exec", "--image-uri", "img:1",
               "--data-bucket", "d", "--artifacts-bucket", "a",
               "--deploy-function-arn", "arn:aws:lambda:us-east-1:111122223333:function:f",
               "--pipeline-role-arn", "arn:aws:iam::111122223333:role/pipe"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["action"] == ("updated" if exists else "created")


def test_definition_to_file(tmp_path, capsys):
    out = tmp_path / "sub" / "definition.json"
    assert main(["pipeline", "definition", "--hp", "batch_size=16", "--output", str(out)]) == 0
    definition = json.loads(out.read_text())
    params = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert params["BatchSize"] == "16"
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["definition.json"]  # no temp left


def test_definition_file_gets_the_usual_permissions(tmp_path):
    """Written like any file of the user's (0666 minus the umask), not mkstemp's 0600."""
    import os

    out = tmp_path / "definition.json"
    old = os.umask(0o022)
    try:
        assert main(["pipeline", "definition", "--output", str(out)]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


def test_malformed_hp_names_the_hp_option(capsys):
    assert main(["pipeline", "definition", "--hp", "batch_size"]) == 2
    err = capsys.readouterr().err
    assert "--hp 'batch_size' is not NAME=VALUE" in err and "--param" not in err


def _options(subcommand: str) -> dict[str, object]:
    """option string -> argparse action of ``s2s-aws pipeline <subcommand>``."""
    import argparse

    from s2s_aws.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["pipeline"]
    cmd = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[subcommand]
    return {opt: action for action in cmd._actions for opt in action.option_strings}


@pytest.mark.parametrize("subcommand", ["definition", "upsert"])
def test_definition_options_come_from_the_settings(subcommand):
    from s2s_aws.pipeline import SETTINGS

    options = _options(subcommand)
    for s in SETTINGS:
        if not s.cli:
            assert "--" + s.name.replace("_", "-") not in options, s.name
            continue
        action = options[s.cli]
        assert action.dest == s.name
        assert action.required == (s.required and subcommand == "upsert"), s.name
        if s.name == "pipeline_name":
            assert action.default == cli_pipeline._DEFAULT_PIPELINE
        elif not s.required and not s.type.startswith("Mapping"):
            assert action.default == s.default, s.name
        if s.help and s.name != "pipeline_name":
            assert action.help.startswith(s.help), s.name


def test_every_option_reaches_the_config():
    from s2s_aws.pipeline import SETTINGS

    given = {"role_arn": "arn:aws:iam::1:role/r", "image_uri": "img", "data_bucket": "d", "artifacts_bucket": "a",
             "deploy_function_arn": "fn", "pipeline_name": "p", "model_package_group": "g", "endpoint_name": "e",
             "kms_key_arn": "k", "source_lang": "de", "target_lang": "fr", "min_bleu": "3.5"}
    argv = ["pipeline", "definition", "--spot", "--hp", "beam_size=2"]
    for name, value in given.items():
        argv += [next(s.cli for s in SETTINGS if s.name == name), value]
    from s2s_aws.cli import build_parser

    cfg = cli_pipeline._config(build_parser().parse_args(argv))
    assert {s.name for s in SETTINGS if s.cli} == set(given) | {"use_spot", "hyperparameters"}
    for name, value in given.items():
        assert str(getattr(cfg, name)) == value, name
    assert cfg.min_bleu == 3.5 and cfg.use_spot is True and dict(cfg.hyperparameters) == {"beam_size": "2"}


def test_unset_required_settings_become_their_placeholders():
    from s2s_aws.cli import build_parser
    from s2s_aws.pipeline import SETTINGS

    cfg = cli_pipeline._config(build_parser().parse_args(["pipeline", "definition"]))
    required = [s for s in SETTINGS if s.required]
    assert [s.name for s in required] == ["role_arn", "image_uri", "data_bucket", "artifacts_bucket",
                                          "deploy_function_arn"]
    for s in required:
        assert getattr(cfg, s.name) == s.placeholder and "${" in s.placeholder


def test_status_reads_every_page_of_steps(stubbed, capsys):
    arn_params = {"PipelineExecutionArn": ARN, "SortOrder": "Ascending"}
    _describe(stubbed, "Executing")
    stubbed.add_response("list_pipeline_execution_steps", {
        "PipelineExecutionSteps": [{"StepName": "Preprocess", "StepStatus": "Succeeded", "StartTime": NOW}],
        "NextToken": "t1"}, arn_params)
    stubbed.add_response("list_pipeline_execution_steps", {
        "PipelineExecutionSteps": [{"StepName": "Train", "StepStatus": "Executing", "StartTime": NOW}]},
        {**arn_params, "NextToken": "t1"})
    assert main(["--json", "pipeline", "status", ARN]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [("Preprocess", "Succeeded"), ("Train", "Executing")]
