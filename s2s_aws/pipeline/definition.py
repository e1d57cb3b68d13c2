"""The pipeline definition, built offline with the sagemaker 3.x workflow classes.

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
The process is left as it was found: environment variables, logging and warning filters are put
back after each build (see :func:`_offline_sdk`). An example is in :mod:`s2s_aws.pipeline`.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import threading
import warnings
from typing import Any, Iterator

from ..contract import layout
from ..contract.metrics import METRIC_DEFINITIONS
from .settings import (
    APPROVAL_STATUSES,
    HYPERPARAMETER_PARAMETERS,
    PARAM_DATA_VERSION,
    PARAM_MIN_BLEU,
    STEP_CONDITION,
    STEP_DEPLOY,
    STEP_EVALUATE,
    STEP_FAIL,
    STEP_PREPROCESS,
    STEP_TRAIN,
    PipelineConfig,
)

__all__ = ["build_definition", "definition_json"]

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
    f'mkdir -p "$out/{layout.TRAIN_CHANNEL}" "$out/{layout.VALIDATION_CHANNEL}" "$out/{layout.VOCAB_CHANNEL}"; '
    f'mv "$work/{layout.TRAIN_FILE}" "$out/{layout.TRAIN_CHANNEL}/"; '
    f'mv "$work/{layout.VALIDATION_FILE}" "$out/{layout.VALIDATION_CHANNEL}/"; '
    f'mv "$work/{layout.SOURCE_VOCAB_FILE}" "$work/{layout.TARGET_VOCAB_FILE}" "$out/{layout.VOCAB_CHANNEL}/"'
)

# ------------------------------------------------------------------ the sagemaker package, offline
#: the sagemaker modules a build uses, imported inside :func:`_offline_sdk`
_SDK_MODULES = ("sagemaker.core.workflow.pipeline_context", "sagemaker.core.processing",
                "sagemaker.core.lambda_helper", "sagemaker.train.model_trainer", "sagemaker.mlops.workflow")
#: the sagemaker package's loggers; it logs config lookups and "popping out job name" notes at INFO/WARNING
_SDK_LOGGER = "sagemaker"
#: one build at a time: the environment and logging changes below must be undone in order
_SDK_LOCK = threading.RLock()

_LoggerState = tuple[int, list[logging.Handler], list[Any], bool, bool]


def _logger_state(logger: logging.Logger) -> _LoggerState:
    return logger.level, list(logger.handlers), list(logger.filters), logger.propagate, logger.disabled


def _set_logger_state(logger: logging.Logger, state: _LoggerState) -> None:
    logger.level, handlers, filters, logger.propagate, logger.disabled = state
    logger.handlers[:] = handlers
    logger.filters[:] = filters


def _loggers() -> dict[str, logging.Logger]:
    """The root logger (as ``""``) and every logger created so far, by name."""
    found = {name: lg for name, lg in list(logging.root.manager.loggerDict.items())
             if isinstance(lg, logging.Logger)}
    found[""] = logging.root
    return found


@contextlib.contextmanager
def _kept_logging() -> Iterator[None]:
    """Put the logging configuration back as it was: levels, handlers, filters, ``logging.disable``.

    Importing the sagemaker package calls ``logging.basicConfig`` (a stderr handler at INFO on the
    root logger); without this the whole process would log differently after a build.
    """
    saved = {name: _logger_state(lg) for name, lg in _loggers().items()}
    disabled = logging.root.manager.disable
    try:
        yield
    finally:
        current = _loggers()
        for name, state in saved.items():
            _set_logger_state(current[name], state)
        logging.disable(disabled)


@contextlib.contextmanager
def _kept_environ(names: tuple[str, ...]) -> Iterator[None]:
    """Put the environment variables ``names`` back as they were (set or unset)."""
    saved = {k: os.environ.get(k) for k in names}
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _muted(prefix: str) -> Iterator[None]:
    """Only ERROR and above from the loggers under ``prefix`` (the ones that exist now), then back.

    Loggers without a level of their own follow ``prefix``'s; the others are set one by one.
    Nothing outside ``prefix`` is touched.
    """
    loggers = [lg for name, lg in _loggers().items() if name == prefix or name.startswith(prefix + ".")]
    if not any(lg.name == prefix for lg in loggers):
        loggers.append(logging.getLogger(prefix))
    loggers = [lg for lg in loggers if lg.name == prefix or lg.level != logging.NOTSET]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.level, logging.ERROR))
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


@contextlib.contextmanager
def _offline_sdk() -> Iterator[str]:
    """Let the sagemaker package build requests without touching AWS; yield the region to use.

    The package takes two settings from the environment only, so they are set for the duration of
    the build and then put back:

    * ``AWS_DEFAULT_REGION`` (when unset): importing ``sagemaker.mlops`` creates a boto3 client at
      import time, which fails without a region (no request is made);
    * ``SAGEMAKER_VALIDATE_ROLE=false``: otherwise ``ModelTrainer`` simulates the role's policies
      through IAM.

    Logging is left as found (:func:`_kept_logging`) and only the ``sagemaker`` loggers are quieted
    meanwhile; warning filters are restored too. Builds run one at a time.
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(_SDK_LOCK)
        stack.enter_context(_kept_environ(("AWS_DEFAULT_REGION", "SAGEMAKER_VALIDATE_ROLE")))
        stack.enter_context(_kept_logging())
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
        with _kept_logging(), _muted(_SDK_LOGGER):  # what the first import does to logging is undone at once
            for name in _SDK_MODULES:
                importlib.import_module(name)
        stack.enter_context(_muted(_SDK_LOGGER))    # now covering the loggers the import created
        yield os.environ["AWS_DEFAULT_REGION"]


def _s3(bucket: str, *parts: str) -> str:
    return "s3://" + "/".join([bucket, *[p.strip("/") for p in parts if p.strip("/")]])


def build_definition(config: PipelineConfig) -> dict[str, Any]:
    """Build the pipeline definition (the JSON document of ``CreatePipeline``) as a dict.

    Offline and deterministic for a given config. Raises :class:`InputError` for a bad config.
    """
    config.validate()
    exposed_hp, fixed_hp = config.hyperparameter_strings()
    with _offline_sdk() as region:
        return _build(config, exposed_hp, fixed_hp, region=region)


def definition_json(config: PipelineConfig, *, indent: int | None = 2) -> str:
    """The pipeline definition as a JSON string."""
    return json.dumps(build_definition(config), indent=indent)


def _build(cfg: PipelineConfig, exposed_hp: dict[str, str], fixed_hp: dict[str, str], *,
           region: str) -> dict[str, Any]:
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
                                 enum_values=list(APPROVAL_STATUSES))
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
    channels = layout.CHANNELS
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
            "--model-dir", f"{_MODEL_DIR}/{layout.MODEL_ARCHIVE}",
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


