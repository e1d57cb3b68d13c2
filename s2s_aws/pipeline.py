"""The SageMaker Pipeline of the project, built offline with the sagemaker 3.x workflow classes.

One retraining run is one pipeline execution::

    Preprocess ──> Train ──> Evaluate ──> CheckBleu ─┬─ BLEU >= MinBleu ─> RegisterAndDeploy (Lambda)
                                                     └─ otherwise ───────> BleuBelowThreshold (Fail)

* ``Preprocess`` (processing job, our image) runs ``s2s-aws preprocess`` on the parallel corpus under
  the data bucket's ``raw/`` prefix (``train.<src>``, ``train.<trg>``, ``dev.<src>``, ``dev.<trg>``)
  and writes the three training channels (``train``, ``validation``, ``vocab``).
* ``Train`` (training job, our image) with the hyperparameters exposed as pipeline parameters.
* ``Evaluate`` (processing job, our image) runs ``s2s-evaluate`` on ``test.<src>``/``test.<trg>`` and
  writes ``evaluation.json`` (``{"bleu": ..., "signature": ..., "num_sentences": ...}``), read back
  through a property file.
* ``CheckBleu`` compares that BLEU with the ``MinBleu`` parameter.
* ``RegisterAndDeploy`` (Lambda step) registers the model in the model package group and, when the
  approval status is ``Approved``, creates or updates the endpoint. ``BleuBelowThreshold`` (fail
  step) ends the execution as Failed with a message that carries the BLEU.

Caching: ``Preprocess``, ``Train`` and ``Evaluate`` are cached (``cache_expire_after``). Their
arguments depend on the ``DataVersion`` parameter, which names the content of ``raw/``: the
retraining triggers pass a fresh value, CI passes e.g. a commit id, so a re-run with the same data
and hyperparameters reuses the finished steps instead of recomputing them.

Building the definition is offline: no credentials, no network, no IAM role check (the sagemaker
package would otherwise simulate the role's policies through IAM). Pass real ARNs/URIs, or
placeholder strings that the caller substitutes afterwards (the CDK stack does this with ``Fn::Sub``).

Example::

    from s2s_aws.pipeline import PipelineConfig, definition_json
    cfg = PipelineConfig(role_arn="arn:aws:iam::111122223333:role/exec", image_uri="...:latest",
                         data_bucket="my-data", artifacts_bucket="my-artifacts",
                         deploy_function_arn="arn:aws:lambda:...:function:deploy")
    print(definition_json(cfg))
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from .errors import InputError
from .metrics import METRIC_DEFINITIONS

__all__ = [
    "PipelineConfig",
    "build_definition",
    "definition_json",
    "HYPERPARAMETER_PARAMETERS",
    "STEP_PREPROCESS",
    "STEP_TRAIN",
    "STEP_EVALUATE",
    "STEP_CONDITION",
    "STEP_DEPLOY",
    "STEP_FAIL",
    "PARAM_MIN_BLEU",
    "PARAM_DATA_VERSION",
    "split_parameters",
    "validate_parameters",
    "ExecutionSummary",
    "upsert_pipeline",
    "start_execution",
    "latest_execution",
    "describe_execution",
    "wait_execution",
    "TERMINAL_STATUSES",
]

logger = logging.getLogger(__name__)

STEP_PREPROCESS = "Preprocess"
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_CONDITION = "CheckBleu"
STEP_DEPLOY = "RegisterAndDeploy"
STEP_FAIL = "BleuBelowThreshold"

PARAM_MIN_BLEU = "MinBleu"
PARAM_DATA_VERSION = "DataVersion"

#: hyperparameter name -> pipeline parameter name (String parameters: SageMaker passes strings)
HYPERPARAMETER_PARAMETERS: dict[str, str] = {
    "batch_size": "BatchSize",
    "learning_rate": "LearningRate",
    "max_num_epochs": "MaxNumEpochs",
    "rnn_num_hidden": "RnnNumHidden",
    "num_embed_source": "NumEmbedSource",
    "num_embed_target": "NumEmbedTarget",
    "num_layers_encoder": "NumLayersEncoder",
    "num_layers_decoder": "NumLayersDecoder",
}
# values for exposed hyperparameters whose schema default is "unset" (a parameter needs a value)
_EXPOSED_FALLBACKS = {"max_num_epochs": "10"}

#: local paths inside the processing containers
_RAW_DIR = "/opt/ml/processing/raw"
_PRE_OUT = "/opt/ml/processing/output"
_MODEL_DIR = "/opt/ml/processing/model"
_EVAL_DIR = "/opt/ml/processing/evaluation"

#: the preprocessing program run by the processing job (``/bin/sh -c``). ``s2s-aws preprocess``
#: writes the four files into one folder; the channels need one S3 prefix each, so they are moved
#: into one output folder per channel.
_PREPROCESS_SCRIPT = (
    "set -eu; "
    f'in="{_RAW_DIR}"; out="{_PRE_OUT}"; work="$(mktemp -d)"; '
    's2s-aws preprocess '
    '-ts "$in/train.$S2S_SOURCE_LANG" -tt "$in/train.$S2S_TARGET_LANG" '
    '-vs "$in/dev.$S2S_SOURCE_LANG" -vt "$in/dev.$S2S_TARGET_LANG" '
    '--output-dir "$work"; '
    'mkdir -p "$out/train" "$out/validation" "$out/vocab"; '
    'mv "$work/train.rec" "$out/train/"; mv "$work/val.rec" "$out/validation/"; '
    'mv "$work/vocab.src.json" "$work/vocab.trg.json" "$out/vocab/"'
)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the pipeline definition needs. Strings may be placeholders (``${Name}``)."""

    role_arn: str
    """Execution role of the processing/training jobs and of the deployed model (an IAM role ARN)."""
    image_uri: str
    """The algorithm image (train/serve/evaluate/preprocess entry points)."""
    data_bucket: str
    """Bucket holding the raw parallel corpus under ``raw_prefix``."""
    artifacts_bucket: str
    """Bucket for preprocessed channels, models, checkpoints and evaluation reports."""
    deploy_function_arn: str
    """Lambda function that registers the model and creates/updates the endpoint."""
    pipeline_name: str = "s2s-pipeline"
    model_package_group: str = "s2s-models"
    endpoint_name: str = "s2s-endpoint"
    kms_key_arn: str | None = None
    raw_prefix: str = "raw/"
    artifacts_prefix: str = "pipeline"
    source_lang: str = "en"
    target_lang: str = "ja"
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.g5.xlarge"
    training_instance_count: int = 1
    endpoint_instance_type: str = "ml.g5.xlarge"
    max_runtime_seconds: int = 86400
    use_spot: bool = False
    """Managed spot training. Chosen when the definition is built, not per execution: the
    CreateTrainingJob API rejects MaxWaitTimeInSeconds unless spot is on, and a pipeline cannot drop
    a field at run time (aws/sagemaker-python-sdk#4140)."""
    max_wait_seconds: int = 172800
    min_bleu: float = 10.0
    approval_status: str = "Approved"
    cache_expire_after: str = "P30D"
    volume_size_gb: int = 50
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    """Hyperparameters of the training job; the names in :data:`HYPERPARAMETER_PARAMETERS` become
    pipeline parameters (with these values as defaults), the rest are fixed in the definition."""

    def validate(self) -> None:
        """Raise :class:`InputError` for values that would produce a broken pipeline."""
        if not self.role_arn.startswith("arn:") or ":iam::" not in self.role_arn:
            raise InputError(f"role_arn {self.role_arn!r} is not an IAM role ARN; pass the execution "
                             "role's ARN (arn:aws:iam::ACCOUNT:role/NAME)")
        for name in ("image_uri", "data_bucket", "artifacts_bucket", "deploy_function_arn", "pipeline_name"):
            if not getattr(self, name):
                raise InputError(f"pipeline setting {name} is empty; give it a value")
        if self.use_spot and self.max_wait_seconds < self.max_runtime_seconds:
            raise InputError(f"max_wait_seconds ({self.max_wait_seconds}) must be >= max_runtime_seconds "
                             f"({self.max_runtime_seconds}) for spot training; raise it or lower the runtime")
        if self.approval_status not in ("Approved", "PendingManualApproval", "Rejected"):
            raise InputError(f"approval_status {self.approval_status!r} must be Approved, "
                             "PendingManualApproval or Rejected")

    def hyperparameter_strings(self) -> tuple[dict[str, str], dict[str, str]]:
        """Validated hyperparameters split into (exposed as parameters, fixed) string maps."""
        from .hyperparameters import Hyperparameters

        hp = Hyperparameters.from_dict(dict(self.hyperparameters))
        explicit = hp.to_strings()
        resolved = hp.to_strings(include_defaults=True)
        exposed: dict[str, str] = {}
        for name in HYPERPARAMETER_PARAMETERS:
            value = explicit.get(name, resolved.get(name, _EXPOSED_FALLBACKS.get(name)))
            if value is None:
                raise InputError(f"hyperparameter {name} has no default; set it in the pipeline config")
            exposed[name] = value
        fixed = {k: v for k, v in explicit.items() if k not in HYPERPARAMETER_PARAMETERS}
        return exposed, fixed


@contextlib.contextmanager
def _offline_sdk() -> Iterator[None]:
    """Let the sagemaker package build requests without touching AWS.

    * ``AWS_DEFAULT_REGION``: importing ``sagemaker.mlops`` creates a boto3 client at import time,
      which fails without a region (no request is made).
    * ``SAGEMAKER_VALIDATE_ROLE=false``: otherwise ``ModelTrainer`` simulates the role's policies
      through IAM.
    """
    saved = {k: os.environ.get(k) for k in ("AWS_DEFAULT_REGION", "SAGEMAKER_VALIDATE_ROLE")}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    # the sagemaker package logs its config lookups and "popping out job name" notes at INFO/WARNING
    quiet = logging.getLogger("sagemaker")
    old_level, old_disabled = quiet.level, logging.root.manager.disable
    quiet.setLevel(logging.ERROR)
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        quiet.setLevel(old_level)
        logging.disable(old_disabled)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _s3(bucket: str, *parts: str) -> str:
    return "s3://" + "/".join([bucket, *[p.strip("/") for p in parts if p.strip("/")]])


def build_definition(config: PipelineConfig) -> dict[str, Any]:
    """Build the pipeline definition (the JSON document of ``CreatePipeline``) as a dict.

    Offline and deterministic for a given config. Raises :class:`InputError` for a bad config.
    """
    config.validate()
    exposed_hp, fixed_hp = config.hyperparameter_strings()
    with _offline_sdk():
        return _build(config, exposed_hp, fixed_hp)


def definition_json(config: PipelineConfig, *, indent: int | None = 2) -> str:
    """The pipeline definition as a JSON string."""
    return json.dumps(build_definition(config), indent=indent)


def _build(cfg: PipelineConfig, exposed_hp: dict[str, str], fixed_hp: dict[str, str]) -> dict[str, Any]:
    import boto3
    from sagemaker.core.lambda_helper import Lambda
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        CheckpointConfig,
        MetricDefinition,
        OutputDataConfig,
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
        StoppingCondition,
    )
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.training.configs import Compute, InputData, Networking
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import (
        CacheConfig,
        ConditionStep,
        FailStep,
        LambdaOutput,
        LambdaStep,
        Pipeline,
        ProcessingStep,
        TrainingStep,
    )
    from sagemaker.mlops.workflow.lambda_step import LambdaOutputTypeEnum
    from sagemaker.train.model_trainer import ModelTrainer

    region = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    # A session object only; with a PipelineSession nothing is sent: requests are captured.
    # The SDK config is given explicitly so that no user/admin config file leaks defaults into the
    # definition and telemetry stays off.
    session = PipelineSession(
        boto_session=boto3.Session(region_name=region),
        default_bucket=cfg.artifacts_bucket,
        sagemaker_config={"SchemaVersion": "1.0",
                          "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}},
    )

    # ---- parameters
    p_data_version = ParameterString(name=PARAM_DATA_VERSION, default_value="initial")
    p_src = ParameterString(name="SourceLang", default_value=cfg.source_lang)
    p_trg = ParameterString(name="TargetLang", default_value=cfg.target_lang)
    p_proc_type = ParameterString(name="ProcessingInstanceType", default_value=cfg.processing_instance_type)
    p_train_type = ParameterString(name="TrainingInstanceType", default_value=cfg.training_instance_type)
    p_train_count = ParameterInteger(name="TrainingInstanceCount", default_value=cfg.training_instance_count)
    p_max_runtime = ParameterInteger(name="MaxRuntimeSeconds", default_value=cfg.max_runtime_seconds)
    p_max_wait = ParameterInteger(name="MaxWaitSeconds", default_value=cfg.max_wait_seconds)
    p_hp = {name: ParameterString(name=pname, default_value=exposed_hp[name])
            for name, pname in HYPERPARAMETER_PARAMETERS.items()}
    p_min_bleu = ParameterFloat(name=PARAM_MIN_BLEU, default_value=float(cfg.min_bleu))
    p_approval = ParameterString(name="ModelApprovalStatus", default_value=cfg.approval_status,
                                 enum_values=["Approved", "PendingManualApproval", "Rejected"])
    p_endpoint = ParameterString(name="EndpointName", default_value=cfg.endpoint_name)
    p_ep_type = ParameterString(name="EndpointInstanceType", default_value=cfg.endpoint_instance_type)
    p_ep_count = ParameterInteger(name="EndpointInstanceCount", default_value=1)
    parameters = [p_data_version, p_src, p_trg, p_proc_type, p_train_type, p_train_count, p_max_runtime]
    if cfg.use_spot:
        parameters.append(p_max_wait)
    parameters += [*p_hp.values(), p_min_bleu, p_approval, p_endpoint, p_ep_type, p_ep_count]

    cache = CacheConfig(enable_caching=True, expire_after=cfg.cache_expire_after)
    art = cfg.artifacts_prefix
    raw_uri = _s3(cfg.data_bucket, cfg.raw_prefix) + "/"
    kms = cfg.kms_key_arn

    def processor(entrypoint: list[str], env: dict[str, Any] | None = None) -> Processor:
        return Processor(role=cfg.role_arn, image_uri=cfg.image_uri, instance_count=1,
                         instance_type=p_proc_type, entrypoint=entrypoint, volume_size_in_gb=30,
                         volume_kms_key=kms, output_kms_key=kms, max_runtime_in_seconds=4 * 3600,
                         sagemaker_session=session, env=env,
                         network_config=NetworkConfig(enable_network_isolation=True))

    def s3_in(name: str, uri: Any, local: str) -> ProcessingInput:
        return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=local, s3_data_type="S3Prefix", s3_input_mode="File"))

    def s3_out(name: str, uri: Any, local: str) -> ProcessingOutput:
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=uri, local_path=local, s3_upload_mode="EndOfJob"))

    # ---- 1. preprocess
    channels = ("train", "validation", "vocab")
    pre_args = processor(
        ["/bin/sh", "-c", _PREPROCESS_SCRIPT],
        env={"S2S_SOURCE_LANG": p_src, "S2S_TARGET_LANG": p_trg, "S2S_DATA_VERSION": p_data_version},
    ).run(
        inputs=[s3_in("raw", raw_uri, _RAW_DIR)],
        outputs=[s3_out(ch, Join(on="/", values=[_s3(cfg.artifacts_bucket, art, "preprocessed"),
                                                  p_data_version, ch]), f"{_PRE_OUT}/{ch}")
                 for ch in channels],
    )
    pre_step = ProcessingStep(name=STEP_PREPROCESS, step_args=pre_args, cache_config=cache,
                              description="s2s-aws preprocess: raw parallel text -> RecordIO channels")

    # ---- 2. train
    hyperparameters: dict[str, Any] = dict(fixed_hp)
    hyperparameters.update(p_hp)
    checkpoint = None
    if cfg.use_spot:
        # per execution: a later job must never resume from another run's checkpoints
        checkpoint = CheckpointConfig(
            s3_uri=Join(on="/", values=[_s3(cfg.artifacts_bucket, art, "checkpoints"),
                                        ExecutionVariables.PIPELINE_EXECUTION_ID]),
            local_path="/opt/ml/checkpoints")
    stopping = {"max_runtime_in_seconds": p_max_runtime}
    if cfg.use_spot:
        stopping["max_wait_time_in_seconds"] = p_max_wait
    output_cfg: dict[str, Any] = {"s3_output_path": _s3(cfg.artifacts_bucket, art, "models") + "/"}
    if kms:
        output_cfg["kms_key_id"] = kms
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=cfg.role_arn,
        training_image=cfg.image_uri,
        base_job_name="s2s-train",
        # pydantic shapes reject pipeline variables for these integer fields; model_construct keeps
        # the variables (the serializer turns them into {"Get": "Parameters..."})
        compute=Compute.model_construct(instance_type=p_train_type, instance_count=p_train_count,
                                        volume_size_in_gb=cfg.volume_size_gb,
                                        volume_kms_key_id=kms,
                                        enable_managed_spot_training=cfg.use_spot),
        stopping_condition=StoppingCondition.model_construct(**stopping),
        output_data_config=OutputDataConfig(**output_cfg),
        checkpoint_config=checkpoint,
        # our programs need no network: SageMaker moves the channels, model and checkpoints
        networking=Networking(enable_network_isolation=True),
        hyperparameters=hyperparameters,
    ).with_metric_definitions([MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in METRIC_DEFINITIONS])
    outputs = pre_step.properties.ProcessingOutputConfig.Outputs
    train_args = trainer.train(input_data_config=[
        InputData(channel_name=ch, data_source=outputs[ch].S3Output.S3Uri) for ch in channels
    ])
    train_step = TrainingStep(name=STEP_TRAIN, step_args=train_args, cache_config=cache,
                              description="train the seq2seq model with the algorithm image")
    model_data = train_step.properties.ModelArtifacts.S3ModelArtifacts

    # ---- 3. evaluate
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    eval_uri = Join(on="/", values=[_s3(cfg.artifacts_bucket, art, "evaluation"),
                                    train_step.properties.TrainingJobName])
    eval_args = processor(["s2s-evaluate"]).run(
        inputs=[s3_in("model", model_data, _MODEL_DIR), s3_in("test", raw_uri, _RAW_DIR)],
        outputs=[s3_out("evaluation", eval_uri, _EVAL_DIR)],
        arguments=[
            "--model-dir", f"{_MODEL_DIR}/model.tar.gz",
            "--source", Join(on="", values=[f"{_RAW_DIR}/test.", p_src]),
            "--reference", Join(on="", values=[f"{_RAW_DIR}/test.", p_trg]),
            "--output-dir", _EVAL_DIR,
        ],
    )
    eval_step = ProcessingStep(name=STEP_EVALUATE, step_args=eval_args, property_files=[report],
                               cache_config=cache, description="s2s-evaluate: BLEU on the test set")
    bleu = JsonGet(step_name=eval_step.name, property_file=report, json_path="bleu")

    # ---- 4. quality gate: register + deploy, or fail
    deploy_step = LambdaStep(
        name=STEP_DEPLOY,
        description="register the model package; create or update the endpoint when approved",
        lambda_func=Lambda(function_arn=cfg.deploy_function_arn),
        inputs={
            "model_data_url": model_data,
            "image_uri": cfg.image_uri,
            "execution_role_arn": cfg.role_arn,
            "model_package_group_name": cfg.model_package_group,
            "approval_status": p_approval,
            "endpoint_name": p_endpoint,
            "instance_type": p_ep_type,
            "instance_count": p_ep_count,
            "bleu": bleu,
            "evaluation_s3_uri": Join(on="/", values=[_s3(cfg.artifacts_bucket, art, "evaluation"),
                                                      train_step.properties.TrainingJobName,
                                                      "evaluation.json"]),
            "training_job_name": train_step.properties.TrainingJobName,
        },
        outputs=[LambdaOutput(output_name=n, output_type=LambdaOutputTypeEnum.String)
                 for n in ("model_package_arn", "endpoint_name", "endpoint_action")],
    )
    fail_step = FailStep(
        name=STEP_FAIL,
        error_message=Join(on=" ", values=["Quality gate failed: BLEU", bleu, "is below MinBleu", p_min_bleu]),
    )
    gate = ConditionStep(
        name=STEP_CONDITION,
        conditions=[ConditionGreaterThanOrEqualTo(left=bleu, right=p_min_bleu)],
        if_steps=[deploy_step],
        else_steps=[fail_step],
    )

    pipeline = Pipeline(name=cfg.pipeline_name, parameters=parameters,
                        steps=[pre_step, train_step, eval_step, gate],
                        sagemaker_session=session, pipeline_experiment_config=None)
    definition = json.loads(pipeline.definition())
    # keys the SDK writes as null (no experiment tracking, no MLflow) are left out
    return {k: v for k, v in definition.items() if v is not None}


def split_parameters(pairs: list[str]) -> dict[str, str]:
    """Parse ``k=v`` strings (``--param``) into a dict; :class:`InputError` on a malformed pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--param {pair!r} is not NAME=VALUE; write e.g. --param MinBleu=20")
        out[name.strip()] = value
    return out


# --------------------------------------------------------------------------- running the pipeline
# (boto3 ``sagemaker`` client injected; used by ``s2s-aws pipeline`` for CI-triggered retraining)

TERMINAL_STATUSES = ("Succeeded", "Failed", "Stopped")


@dataclass
class ExecutionSummary:
    """Where a pipeline execution stands: status, failure reason, and every step's status."""

    arn: str
    status: str
    failure_reason: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    @property
    def quality_gate_failed(self) -> bool:
        """True when the execution ended in the BLEU fail step."""
        return any(s["name"] == STEP_FAIL and s["status"] in ("Failed", "Succeeded") for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"execution_arn": self.arn, "status": self.status, "failure_reason": self.failure_reason,
                "quality_gate_failed": self.quality_gate_failed, "steps": self.steps}


def validate_parameters(params: Mapping[str, str]) -> None:
    """Check hyperparameter-backed pipeline parameters with the hyperparameter schema.

    Raises :class:`InputError` (from ``HyperparameterError``) before anything is started.
    """
    from .hyperparameters import Hyperparameters

    by_param = {p: hp for hp, p in HYPERPARAMETER_PARAMETERS.items()}
    hps = {by_param[k]: v for k, v in params.items() if k in by_param}
    if hps:
        Hyperparameters.from_strings(hps)
    if PARAM_MIN_BLEU in params:
        try:
            float(params[PARAM_MIN_BLEU])
        except ValueError:
            raise InputError(f"--param {PARAM_MIN_BLEU}={params[PARAM_MIN_BLEU]!r} is not a number") from None


def upsert_pipeline(sagemaker: Any, *, name: str, definition: str, role_arn: str,
                    description: str = "s2s retraining pipeline") -> tuple[str, str]:
    """Create the pipeline, or update it when it exists. Returns ``(pipeline_arn, "created"|"updated")``."""
    from ._aws import error_code

    try:
        sagemaker.describe_pipeline(PipelineName=name)
        exists = True
    except Exception as e:  # botocore ClientError
        if error_code(e) != "ResourceNotFound":
            raise
        exists = False
    call = sagemaker.update_pipeline if exists else sagemaker.create_pipeline
    resp = call(PipelineName=name, PipelineDefinition=definition, PipelineDescription=description,
                RoleArn=role_arn)
    return resp["PipelineArn"], "updated" if exists else "created"


def start_execution(sagemaker: Any, *, name: str, parameters: Mapping[str, str] | None = None,
                    display_name: str | None = None) -> str:
    """Start an execution of pipeline ``name``; returns the execution ARN."""
    kwargs: dict[str, Any] = {"PipelineName": name}
    if parameters:
        validate_parameters(parameters)
        kwargs["PipelineParameters"] = [{"Name": k, "Value": str(v)} for k, v in parameters.items()]
    if display_name:
        kwargs["PipelineExecutionDisplayName"] = display_name
    return sagemaker.start_pipeline_execution(**kwargs)["PipelineExecutionArn"]


def latest_execution(sagemaker: Any, *, name: str) -> str:
    """ARN of the most recent execution of pipeline ``name``; :class:`InputError` when there is none."""
    resp = sagemaker.list_pipeline_executions(PipelineName=name, SortBy="CreationTime",
                                              SortOrder="Descending", MaxResults=1)
    items = resp.get("PipelineExecutionSummaries", [])
    if not items:
        raise InputError(f"pipeline {name!r} has no executions yet; start one with 's2s-aws pipeline start'")
    return items[0]["PipelineExecutionArn"]


def describe_execution(sagemaker: Any, arn: str) -> ExecutionSummary:
    """Status of execution ``arn`` with its steps (oldest first) and their failure reasons."""
    desc = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
    steps: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
    while True:
        page = sagemaker.list_pipeline_execution_steps(**kwargs)
        for s in page.get("PipelineExecutionSteps", []):
            step = {"name": s.get("StepName"), "status": s.get("StepStatus")}
            if s.get("FailureReason"):
                step["failure_reason"] = s["FailureReason"]
            if s.get("CacheHitResult", {}).get("SourcePipelineExecutionArn"):
                step["cache_hit"] = True
            steps.append(step)
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    reason = desc.get("FailureReason")
    if not reason:
        failed = [s for s in steps if s.get("failure_reason")]
        reason = failed[0]["failure_reason"] if failed else None
    return ExecutionSummary(arn=arn, status=desc["PipelineExecutionStatus"], failure_reason=reason, steps=steps)


def wait_execution(sagemaker: Any, arn: str, *, poll_seconds: float = 30.0, timeout: float | None = None,
                   sleep: Any = None, on_change: Any = None) -> ExecutionSummary:
    """Poll until the execution is Succeeded, Failed or Stopped; return its summary.

    Raises :class:`~s2s_aws.errors.WaitTimeout` after ``timeout`` seconds (the execution goes on).
    ``on_change(summary)`` is called whenever a step status changes (progress output).
    """
    import time

    from .errors import WaitTimeout

    sleep = sleep or time.sleep
    start = time.monotonic()
    seen: list[tuple[str, str]] = []
    while True:
        summary = describe_execution(sagemaker, arn)
        state = [(s["name"], s["status"]) for s in summary.steps] + [("", summary.status)]
        if state != seen and on_change is not None:
            on_change(summary)
        seen = state
        if summary.status in TERMINAL_STATUSES:
            return summary
        if timeout is not None and time.monotonic() - start >= timeout:
            raise WaitTimeout(f"pipeline execution {arn} is still {summary.status} after {timeout:.0f} s; "
                              f"it keeps running - check it later with 's2s-aws pipeline status {arn}'")
        sleep(poll_seconds)
