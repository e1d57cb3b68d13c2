"""The SageMaker pipeline definition (s2s_aws.pipeline): built offline, parsed back and checked."""
from __future__ import annotations

import json
import socket

import pytest

from s2s_aws.errors import HyperparameterError, InputError
from s2s_aws.contract.metrics import METRIC_DEFINITIONS
from s2s_aws.pipeline import (
    HYPERPARAMETER_PARAMETERS,
    STEP_CONDITION,
    STEP_DEPLOY,
    STEP_EVALUATE,
    STEP_FAIL,
    STEP_PREPROCESS,
    STEP_TRAIN,
    PipelineConfig,
    build_definition,
    split_parameters,
    validate_parameters,
)

ROLE = "arn:aws:iam::111122223333:role/s2s-exec"
FN = "arn:aws:lambda:us-east-1:111122223333:function:s2s-dev-register-deploy"


def _config(**kw) -> PipelineConfig:
    base = dict(role_arn=ROLE, image_uri="111122223333.dkr.ecr.us-east-1.amazonaws.com/s2s:1",
                data_bucket="data-bkt", artifacts_bucket="art-bkt", deploy_function_arn=FN,
                kms_key_arn="arn:aws:kms:us-east-1:111122223333:key/abc", min_bleu=12.5,
                hyperparameters={"rnn_num_hidden": 256, "beam_size": 3})
    base.update(kw)
    return PipelineConfig(**base)


@pytest.fixture(scope="module")
def offline_builds():
    """Both variants built once, with every socket connection refused (proves: no network)."""
    real_connect = socket.socket.connect

    def refuse(self, *a, **k):
        raise AssertionError(f"network access while building the definition: {a}")

    socket.socket.connect = refuse
    try:
        on_demand = build_definition(_config())
        spot = build_definition(_config(use_spot=True))
    finally:
        socket.socket.connect = real_connect
    return on_demand, spot


@pytest.fixture(scope="module")
def definition(offline_builds):
    return offline_builds[0]


def _steps(definition) -> dict[str, dict]:
    out = {}
    for step in definition["Steps"]:
        out[step["Name"]] = step
        if step["Type"] == "Condition":
            for inner in step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]:
                out[inner["Name"]] = inner
    return out


def _refs(obj) -> set[str]:
    """Every step name referenced through {"Get": "Steps.X..."} or a property file."""
    found: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "Get" and isinstance(v, str) and v.startswith("Steps."):
                found.add(v.split(".")[1])
            else:
                found |= _refs(v)
    elif isinstance(obj, list):
        for item in obj:
            found |= _refs(item)
    return found


def test_is_json_and_has_the_five_stage_graph(definition):
    assert json.loads(json.dumps(definition)) == definition
    assert definition["Version"] == "2020-12-01"
    assert [s["Name"] for s in definition["Steps"]] == [STEP_PREPROCESS, STEP_TRAIN, STEP_EVALUATE, STEP_CONDITION]
    types = {n: s["Type"] for n, s in _steps(definition).items()}
    assert types == {STEP_PREPROCESS: "Processing", STEP_TRAIN: "Training", STEP_EVALUATE: "Processing",
                     STEP_CONDITION: "Condition", STEP_DEPLOY: "Lambda", STEP_FAIL: "Fail"}


def test_dependencies_follow_the_data(definition):
    steps = _steps(definition)
    assert _refs(steps[STEP_PREPROCESS]["Arguments"]) == set()
    assert _refs(steps[STEP_TRAIN]["Arguments"]) == {STEP_PREPROCESS}
    assert _refs(steps[STEP_EVALUATE]["Arguments"]) == {STEP_TRAIN}
    assert _refs(steps[STEP_CONDITION]["Arguments"]["Conditions"]) == {STEP_EVALUATE}
    assert _refs(steps[STEP_DEPLOY]["Arguments"]) == {STEP_TRAIN, STEP_EVALUATE}


def test_parameters(definition):
    params = {p["Name"]: p for p in definition["Parameters"]}
    for name in ("DataVersion", "TrainingInstanceType", "TrainingInstanceCount", "MaxRuntimeSeconds",
                 "MinBleu", "EndpointName", "ModelApprovalStatus", *HYPERPARAMETER_PARAMETERS.values()):
        assert name in params, name
    assert params["MinBleu"] == {"Name": "MinBleu", "Type": "Float", "DefaultValue": 12.5}
    assert params["TrainingInstanceCount"]["Type"] == "Integer"
    assert params["RnnNumHidden"]["DefaultValue"] == "256"     # from the config's hyperparameters
    assert params["BatchSize"]["DefaultValue"] == "64"         # schema default
    assert "MaxWaitSeconds" not in params                      # spot off


def test_training_step(definition):
    args = _steps(definition)[STEP_TRAIN]["Arguments"]
    assert args["AlgorithmSpecification"]["TrainingImage"].endswith("/s2s:1")
    assert args["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    hp = args["HyperParameters"]
    assert hp["beam_size"] == "3"                              # fixed, not a parameter
    assert hp["batch_size"] == {"Get": "Parameters.BatchSize"}
    assert args["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    assert args["ResourceConfig"]["InstanceCount"] == {"Get": "Parameters.TrainingInstanceCount"}
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": {"Get": "Parameters.MaxRuntimeSeconds"}}
    assert args.get("EnableManagedSpotTraining") is False
    assert "CheckpointConfig" not in args
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in args["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "vocab"}
    assert channels["vocab"] == {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['vocab'].S3Output.S3Uri"}
    assert args["RoleArn"] == ROLE
    assert args["OutputDataConfig"]["KmsKeyId"].startswith("arn:aws:kms:")
    assert args["EnableNetworkIsolation"] is True


@pytest.mark.parametrize("step", [STEP_PREPROCESS, STEP_EVALUATE])
def test_processing_steps_run_network_isolated(definition, step):
    args = _steps(definition)[step]["Arguments"]
    assert args["NetworkConfig"]["EnableNetworkIsolation"] is True


def test_spot_variant(offline_builds):
    spot = offline_builds[1]
    args = _steps(spot)[STEP_TRAIN]["Arguments"]
    assert args["EnableManagedSpotTraining"] is True
    assert args["StoppingCondition"]["MaxWaitTimeInSeconds"] == {"Get": "Parameters.MaxWaitSeconds"}
    assert "PipelineExecutionId" in json.dumps(args["CheckpointConfig"]["S3Uri"])
    assert "MaxWaitSeconds" in {p["Name"] for p in spot["Parameters"]}


def test_preprocess_step_runs_the_cli_on_raw(definition):
    args = _steps(definition)[STEP_PREPROCESS]["Arguments"]
    script = " ".join(args["AppSpecification"]["ContainerEntrypoint"])
    assert "s2s-aws preprocess" in script and "-ts" in script and "--output-dir" in script
    assert "${" not in script   # the CDK stack substitutes ${...} with Fn::Sub
    assert args["ProcessingInputs"][0]["S3Input"]["S3Uri"] == "s3://data-bkt/raw/"
    outputs = {o["OutputName"] for o in args["ProcessingOutputConfig"]["Outputs"]}
    assert outputs == {"train", "validation", "vocab"}
    assert args["Environment"]["S2S_DATA_VERSION"] == {"Get": "Parameters.DataVersion"}


def test_evaluation_writes_a_property_file(definition):
    step = _steps(definition)[STEP_EVALUATE]
    assert step["Arguments"]["AppSpecification"]["ContainerEntrypoint"] == ["s2s-evaluate"]
    argv = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    for flag in ("--model-dir", "--source", "--reference", "--output-dir"):
        assert flag in argv
    assert step["PropertyFiles"] == [{"PropertyFileName": "EvaluationReport", "OutputName": "evaluation",
                                      "FilePath": "evaluation.json"}]


def test_bleu_condition_and_branches(definition):
    cond = _steps(definition)[STEP_CONDITION]["Arguments"]
    (c,) = cond["Conditions"]
    assert c["Type"] == "GreaterThanOrEqualTo"
    assert c["LeftValue"]["Std:JsonGet"]["Path"] == "bleu"
    assert c["LeftValue"]["Std:JsonGet"]["PropertyFile"] == {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}
    assert c["RightValue"] == {"Get": "Parameters.MinBleu"}
    assert [s["Name"] for s in cond["IfSteps"]] == [STEP_DEPLOY]
    assert [s["Name"] for s in cond["ElseSteps"]] == [STEP_FAIL]
    message = json.dumps(cond["ElseSteps"][0]["Arguments"]["ErrorMessage"])
    assert "Std:JsonGet" in message and "MinBleu" in message
    deploy = cond["IfSteps"][0]
    assert deploy["FunctionArn"] == FN
    assert deploy["Arguments"]["approval_status"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert {o["OutputName"] for o in deploy["OutputParameters"]} == {"model_package_arn", "endpoint_name",
                                                                      "endpoint_action"}


def test_caching_on_the_job_steps_only(definition):
    steps = _steps(definition)
    for name in (STEP_PREPROCESS, STEP_TRAIN, STEP_EVALUATE):
        assert steps[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    assert "CacheConfig" not in steps[STEP_DEPLOY]        # side effects: never replayed from cache


def test_bad_config_is_rejected_before_building():
    with pytest.raises(InputError, match="IAM role ARN"):
        build_definition(_config(role_arn="my-role"))
    with pytest.raises(HyperparameterError):
        build_definition(_config(hyperparameters={"batch_size": 0}))
    with pytest.raises(InputError, match="max_wait_seconds"):
        build_definition(_config(use_spot=True, max_wait_seconds=10))


def test_parameter_helpers():
    assert split_parameters(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(InputError):
        split_parameters(["novalue"])
    validate_parameters({"BatchSize": "32", "MinBleu": "20", "DataVersion": "abc"})
    with pytest.raises(HyperparameterError):
        validate_parameters({"BatchSize": "-3"})
    with pytest.raises(InputError):
        validate_parameters({"MinBleu": "high"})


_PROCESS_STATE_PROBE = r'''
import json, logging, os, sys, warnings

def logging_state():
    loggers = {"": logging.root}
    loggers.update((n, lg) for n, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger))
    return {"disable": logging.root.manager.disable,
            "loggers": {n: [lg.level, [repr(h) for h in lg.handlers], len(lg.filters), lg.propagate, lg.disabled]
                        for n, lg in loggers.items()}}

logging.getLogger("app").setLevel(logging.INFO)
logging.getLogger("app.db").addHandler(logging.NullHandler())
env_before, log_before, filters_before = dict(os.environ), logging_state(), list(warnings.filters)
from s2s_aws.pipeline import PipelineConfig, build_definition
build_definition(PipelineConfig(role_arn="arn:aws:iam::111122223333:role/x", image_uri="img", data_bucket="d",
                                artifacts_bucket="a", deploy_function_arn="fn", use_spot=True))
log_after = logging_state()
print(json.dumps({
    "environ": {k: [env_before.get(k), os.environ.get(k)] for k in set(env_before) | set(os.environ)
                if env_before.get(k) != os.environ.get(k)},
    "disable": [log_before["disable"], log_after["disable"]],
    "changed": {n: [s, log_after["loggers"].get(n)] for n, s in log_before["loggers"].items()
                if log_after["loggers"].get(n) != s},
    # loggers the sagemaker import created outside its own namespace: at most a NullHandler each
    "new_outside_sagemaker": {n: s for n, s in log_after["loggers"].items() if n not in log_before["loggers"]
                              and n.split(".")[0] != "sagemaker"
                              and any("NullHandler" not in h for h in s[1])},
    "warning_filters_kept": list(warnings.filters) == filters_before,
}))
'''


@pytest.mark.parametrize("region", [None, "eu-west-1"])
def test_building_leaves_the_environment_and_logging_as_they_were(region):
    """In a fresh interpreter (the sagemaker package's first import is where it calls basicConfig)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("AWS_DEFAULT_REGION", "AWS_REGION",
                                                             "SAGEMAKER_VALIDATE_ROLE")}
    if region:
        env["AWS_DEFAULT_REGION"] = region
    proc = subprocess.run([sys.executable, "-c", _PROCESS_STATE_PROBE], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    assert state["environ"] == {}
    assert state["disable"][0] == state["disable"][1]
    assert state["changed"] == {}             # root logger included: no handler added, level kept
    assert state["new_outside_sagemaker"] == {}
    assert state["warning_filters_kept"]
    assert proc.stderr == ""                  # and nothing was logged or warned on the way


def test_the_build_leaves_other_loggers_working(monkeypatch):
    """Only the sagemaker package's loggers are quieted while a definition is built, not the process."""
    import logging

    from s2s_aws.pipeline import definition as definition_module

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    app = logging.getLogger("test_app_logger")
    handler = Keep()
    app.addHandler(handler)
    real_build = definition_module._build

    def build_and_log(*args, **kwargs):
        app.warning("still heard during the build")
        return real_build(*args, **kwargs)

    monkeypatch.setattr(definition_module, "_build", build_and_log)
    try:
        build_definition(_config())
    finally:
        app.removeHandler(handler)
    assert [r.getMessage() for r in seen] == ["still heard during the build"]
