"""The SageMaker Pipeline of the project: its settings, its definition, its executions.

* :mod:`~s2s_aws.pipeline.settings` -- :class:`PipelineConfig`, the one declaration of the pipeline
  settings (the ``pipeline`` CLI options and the CDK context keys are derived from it), and the
  step and parameter names.
* :mod:`~s2s_aws.pipeline.definition` -- :func:`build_definition`: the ``CreatePipeline`` document,
  built offline with the sagemaker package (imported only there, when a definition is built).
* :mod:`~s2s_aws.pipeline.executions` -- create/update the pipeline, start and follow executions
  with a boto3 ``sagemaker`` client.

Importing this package is light: neither boto3 nor the sagemaker package is imported.

Example::

    from s2s_aws.pipeline import PipelineConfig, definition_json
    cfg = PipelineConfig(role_arn="arn:aws:iam::111122223333:role/exec", image_uri="...:latest",
                         data_bucket="my-data", artifacts_bucket="my-artifacts",
                         deploy_function_arn="arn:aws:lambda:...:function:deploy")
    print(definition_json(cfg))
"""
from __future__ import annotations

from .definition import build_definition, definition_json
from .executions import (
    TERMINAL_STATUSES,
    ExecutionSummary,
    describe_execution,
    latest_execution,
    start_execution,
    upsert_pipeline,
    validate_parameters,
    wait_execution,
)
from .settings import (
    HYPERPARAMETER_PARAMETERS,
    PARAM_DATA_VERSION,
    PARAM_MIN_BLEU,
    SETTINGS,
    STEP_CONDITION,
    STEP_DEPLOY,
    STEP_EVALUATE,
    STEP_FAIL,
    STEP_PREPROCESS,
    STEP_TRAIN,
    PipelineConfig,
    Setting,
    split_parameters,
)

__all__ = [
    "PipelineConfig",
    "Setting",
    "SETTINGS",
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
