"""The pipeline settings, declared once: :class:`PipelineConfig` and the names the pipeline exposes.

Each field of :class:`PipelineConfig` carries its spec in the field metadata (see :func:`setting`):
a one-line ``help``, whether the ``s2s-aws pipeline definition``/``upsert`` commands offer it as an
option (``cli``), whether the CDK app reads it from the cdk context (``context``), and the
``${Name}`` placeholder that stands for a deploy-time value. :data:`SETTINGS` lists them; the CLI
options (``s2s_aws/cli/pipeline.py``) and the CDK app's context keys (``infra/s2s_infra/config.py``)
are derived from it, so a setting is added, renamed or given a new default here only.

Example::

    from s2s_aws.pipeline.settings import SETTINGS
    print([s.name for s in SETTINGS if s.context])   # the pipeline's cdk context keys
"""
from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass, field
from typing import Any, Mapping

from ..errors import InputError

__all__ = [
    "PipelineConfig",
    "Setting",
    "SETTINGS",
    "setting",
    "HYPERPARAMETER_PARAMETERS",
    "STEP_PREPROCESS",
    "STEP_TRAIN",
    "STEP_EVALUATE",
    "STEP_CONDITION",
    "STEP_DEPLOY",
    "STEP_FAIL",
    "PARAM_MIN_BLEU",
    "PARAM_DATA_VERSION",
    "APPROVAL_STATUSES",
    "split_parameters",
]

STEP_PREPROCESS = "Preprocess"
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_CONDITION = "CheckBleu"
STEP_DEPLOY = "RegisterAndDeploy"
STEP_FAIL = "BleuBelowThreshold"

PARAM_MIN_BLEU = "MinBleu"
PARAM_DATA_VERSION = "DataVersion"

#: the values of the ``ModelApprovalStatus`` parameter (those of the model registry)
APPROVAL_STATUSES = ("Approved", "PendingManualApproval", "Rejected")

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


def setting(default: Any = MISSING, *, help: str, cli: bool | str = False, context: bool = False,  # noqa: A002
            placeholder: str | None = None, default_factory: Any = MISSING) -> Any:
    """A :class:`PipelineConfig` field with its spec in the metadata.

    ``cli``: ``True`` offers it as ``--name-with-dashes`` on ``pipeline definition``/``upsert``, a
    string names the option instead (``"--spot"``). ``context``: the CDK app reads it from the cdk
    context under the field's name. ``placeholder``: the ``${Name}`` the CLI writes for an unset
    required value and the CDK stack substitutes at deploy time.
    """
    metadata = {"help": help, "cli": cli, "context": context, "placeholder": placeholder}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the pipeline definition needs. Strings may be placeholders (``${Name}``).

    Build the definition with :func:`s2s_aws.pipeline.build_definition`; each field's help is in
    :data:`SETTINGS`.
    """

    role_arn: str = setting(
        help="execution role of the jobs and the model", cli=True,
        placeholder="arn:aws:iam::${AWS::AccountId}:role/${ExecutionRoleName}")
    image_uri: str = setting(help="the algorithm image", cli=True, placeholder="${ImageUri}")
    data_bucket: str = setting(help="bucket with raw/ parallel text", cli=True, placeholder="${DataBucket}")
    artifacts_bucket: str = setting(help="bucket for channels, models, reports", cli=True,
                                    placeholder="${ArtifactsBucket}")
    deploy_function_arn: str = setting(help="register-and-deploy Lambda", cli=True,
                                       placeholder="${DeployFunctionArn}")
    pipeline_name: str = setting("s2s-pipeline", help="name of the SageMaker pipeline", cli=True)
    model_package_group: str = setting("s2s-models", help="model package group the models are registered in",
                                       cli=True)
    endpoint_name: str = setting("s2s-endpoint", help="endpoint created or updated with an approved model",
                                 cli=True)
    kms_key_arn: str | None = setting(None, help="KMS key for job volumes and outputs", cli=True)
    raw_prefix: str = setting("raw/", help="prefix of the raw parallel corpus in the data bucket")
    artifacts_prefix: str = setting("pipeline", help="prefix of the pipeline's files in the artifacts bucket")
    source_lang: str = setting("en", help="source language suffix of the raw files", cli=True, context=True)
    target_lang: str = setting("ja", help="target language suffix of the raw files", cli=True, context=True)
    processing_instance_type: str = setting("ml.m5.xlarge", help="instance type of the processing jobs",
                                            context=True)
    training_instance_type: str = setting("ml.g5.xlarge", help="instance type of the training job",
                                          context=True)
    training_instance_count: int = setting(1, help="instance count of the training job")
    endpoint_instance_type: str = setting("ml.g5.xlarge", help="instance type of the endpoint", context=True)
    max_runtime_seconds: int = setting(86400, help="training job time limit in seconds")
    # Chosen when the definition is built, not per execution: the CreateTrainingJob API rejects
    # MaxWaitTimeInSeconds unless spot is on, and a pipeline cannot drop a field at run time
    # (aws/sagemaker-python-sdk#4140).
    use_spot: bool = setting(False, help="managed spot training (fixed in the definition)", cli="--spot",
                             context=True)
    max_wait_seconds: int = setting(172800, help="spot training: longest wait for capacity plus runtime")
    min_bleu: float = setting(10.0, help="quality gate: lowest BLEU that registers and deploys", cli=True,
                              context=True)
    # PendingManualApproval: a model above the gate is registered, and deployed only once someone
    # approves it; Approved (an explicit choice) deploys it at once
    approval_status: str = setting("PendingManualApproval",
                                   help="approval status of a registered model package (Approved deploys at once)",
                                   context=True)
    cache_expire_after: str = setting("P30D", help="how long finished steps are reused (ISO 8601 duration)",
                                      context=True)
    volume_size_gb: int = setting(50, help="training volume size in GB")
    # the names in HYPERPARAMETER_PARAMETERS become pipeline parameters (with these values as
    # defaults), the rest are fixed in the definition
    hyperparameters: Mapping[str, Any] = setting(help="hyperparameter default (repeatable)", cli="--hp",
                                                 default_factory=dict)

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
        if self.approval_status not in APPROVAL_STATUSES:
            raise InputError(f"approval_status {self.approval_status!r} must be Approved, "
                             "PendingManualApproval or Rejected")

    def hyperparameter_strings(self) -> tuple[dict[str, str], dict[str, str]]:
        """Validated hyperparameters split into (exposed as parameters, fixed) string maps."""
        from ..contract.hyperparameters import Hyperparameters

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


@dataclass(frozen=True)
class Setting:
    """The spec of one :class:`PipelineConfig` field (read from its metadata)."""

    name: str
    type: str
    """The annotation as written: ``"str"``, ``"str | None"``, ``"int"``, ``"float"``, ``"bool"``, ``"Mapping[str, Any]"``."""
    default: Any
    """The default value (a fresh one for ``default_factory`` fields); :data:`dataclasses.MISSING` when required."""
    help: str
    cli: str | None
    """The option of ``pipeline definition``/``upsert`` (``"--role-arn"``), or ``None``."""
    context: bool
    placeholder: str | None

    @property
    def required(self) -> bool:
        return self.default is MISSING


def _settings() -> tuple[Setting, ...]:
    out = []
    for f in dataclasses.fields(PipelineConfig):
        meta = f.metadata
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        cli = meta["cli"]
        flag = cli if isinstance(cli, str) else ("--" + f.name.replace("_", "-") if cli else None)
        out.append(Setting(name=f.name, type=str(f.type), default=default, help=meta["help"], cli=flag,
                           context=meta["context"], placeholder=meta["placeholder"]))
    return tuple(out)


#: every pipeline setting, in field order
SETTINGS: tuple[Setting, ...] = _settings()


def split_parameters(pairs: list[str], *, option: str = "--param", example: str = "MinBleu=20") -> dict[str, str]:
    """Parse ``k=v`` strings (``--param``) into a dict; :class:`InputError` on a malformed pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"{option} {pair!r} is not NAME=VALUE; write e.g. {option} {example}")
        out[name.strip()] = value
    return out
