"""Settings of the CDK app, read from ``cdk.json`` context (override with ``cdk synth -c key=value``).

:class:`InfraConfig` is the infrastructure's own settings (:class:`_InfraSettings`) plus the
pipeline settings that :data:`s2s_aws.pipeline.settings.SETTINGS` marks ``context``: those are
declared once, on :class:`s2s_aws.pipeline.PipelineConfig` (name, type, default, help), and only
read here. The pipeline settings the stacks fix (its name, the bucket prefixes) are derived below.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from typing import Any

from constructs import Node

from s2s_aws.pipeline.settings import APPROVAL_STATUSES, SETTINGS

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
_PIPELINE_DEFAULTS = {s.name: s.default for s in SETTINGS}


class ContextError(ValueError):
    """A ``-c key=value`` (or ``cdk.json`` context) value the stacks cannot use; the message is one line."""


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ContextError(f"cdk context {name}={value!r} is not a boolean; use true or false")


def _as_number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise ContextError(f"cdk context {name}={value!r} is not a number; pass e.g. -c {name}=10")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise ContextError(f"cdk context {name}={value!r} is not {what}; pass e.g. -c {name}=10") from None
    if kind is int and isinstance(value, float) and value != number:
        raise ContextError(f"cdk context {name}={value!r} is not a whole number; pass e.g. -c {name}=10")
    return number


_ISO_DURATION = re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?")
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
_CHECKS: dict[str, tuple[Any, str]] = {
    # key: (a regular expression the value must match in full, or a predicate; what is allowed)
    "account": (re.compile(r"(\d{12})?"), "a 12-digit AWS account id, or empty for the CLI's account"),
    "region": (re.compile(r"[a-z]{2}(-[a-z]+)+-\d"), "an AWS region such as us-east-1"),
    "image_tag": (re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
                  "an ECR image tag (letters, digits, _ . -; at most 128)"),
    "raw_trigger_suffix": (re.compile(r"[A-Za-z0-9_.\-/]{0,64}"),
                           "an S3 key suffix of letters, digits, _ . - / (or empty)"),
    "source_lang": (re.compile(r"[A-Za-z0-9_-]{1,16}"), "a language suffix such as en"),
    "target_lang": (re.compile(r"[A-Za-z0-9_-]{1,16}"), "a language suffix such as ja"),
    "processing_instance_type": (_INSTANCE_TYPE, "a SageMaker instance type such as ml.m5.xlarge"),
    "training_instance_type": (_INSTANCE_TYPE, "a SageMaker instance type such as ml.g5.xlarge"),
    "endpoint_instance_type": (_INSTANCE_TYPE, "a SageMaker instance type such as ml.g5.xlarge"),
    "cache_expire_after": (_ISO_DURATION, "an ISO 8601 duration such as P30D or PT12H"),
    "approval_status": (lambda v: v in APPROVAL_STATUSES, " or ".join(APPROVAL_STATUSES)),
    "min_bleu": (lambda v: 0 <= v <= 100, "a BLEU score from 0 to 100"),
    "log_retention_days": (lambda v: v >= 1, "a number of days >= 1"),
}


def _check(name: str, value: Any) -> None:
    rule, allowed = _CHECKS[name]
    ok = rule.fullmatch(value) is not None if isinstance(rule, re.Pattern) else rule(value)
    if not ok:
        raise ContextError(f"cdk context {name}={value!r} is not allowed; use {allowed}")


@dataclass(frozen=True)
class _InfraSettings:
    """The settings of the stacks themselves. Field names are the context keys."""

    env_name: str = "dev"
    account: str = ""
    region: str = "us-east-1"
    image_source: str = "asset"          # asset: build containers/seq2seq/Dockerfile; ecr: use image_tag
    image_tag: str = "latest"
    ecr_keep_images: int = 10
    schedule: str = "rate(7 days)"       # EventBridge rate()/cron(); empty disables the schedule
    raw_trigger_suffix: str = ""         # e.g. "_READY": start only when a marker object lands
    destroy_data: bool = False
    artifact_ia_days: int = 30
    artifact_expire_days: int = 365
    noncurrent_expire_days: int = 30
    access_log_expire_days: int = 90
    log_retention_days: int = 30
    nag: bool = True
    docker_directory: str = ""           # build context; default: the repository root
    dockerfile: str = "containers/seq2seq/Dockerfile"

    @classmethod
    def from_node(cls, node: Node) -> InfraConfig:
        """Read every field from the construct tree's context; missing keys keep their defaults."""
        known = {f.name for f in fields(cls)}
        for key in node.get_all_context() or {}:
            # the CDK's own keys carry ":" (aws:cdk:..., lookups) or start with "@" (feature flags)
            if key not in known and ":" not in key and not key.startswith("@"):
                import difflib

                near = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"did you mean {near[0]}?" if near else "see the context of infra/cdk.json"
                raise ContextError(f"cdk context {key} is not a setting of this app; {hint}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = node.try_get_context(f.name)
            if raw is None:
                continue
            if f.type == "bool":
                values[f.name] = _as_bool(f.name, raw)
            elif f.type == "int":
                values[f.name] = _as_number(f.name, raw, int)
            elif f.type == "float":
                values[f.name] = _as_number(f.name, raw, float)
            else:
                values[f.name] = str(raw)
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`ContextError` (one line, with the key to fix) for settings the stacks cannot use."""
        for name in _CHECKS:
            if hasattr(self, name):
                _check(name, getattr(self, name))
        if getattr(self, "source_lang", None) == getattr(self, "target_lang", 0):
            raise ContextError(f"cdk context source_lang and target_lang are both {self.source_lang!r}; "
                               "give two different languages")
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", self.env_name):
            raise ContextError(f"cdk context env_name={self.env_name!r}: use 1-16 lower-case letters, "
                             "digits or dashes, starting with a letter")
        if self.image_source not in ("asset", "ecr"):
            raise ContextError(f"cdk context image_source={self.image_source!r}: use asset or ecr")
        if self.schedule and not re.fullmatch(r"(rate|cron)\(.+\)", self.schedule):
            raise ContextError(f"cdk context schedule={self.schedule!r}: use rate(...) or cron(...), "
                             "or an empty string to disable the schedule")
        if self.artifact_expire_days <= self.artifact_ia_days:
            raise ContextError("cdk context artifact_expire_days must be greater than artifact_ia_days")
        if self.artifact_ia_days < 30:
            raise ContextError("cdk context artifact_ia_days must be >= 30 (S3 minimum for STANDARD_IA)")
        for name in ("ecr_keep_images", "noncurrent_expire_days", "access_log_expire_days"):
            if getattr(self, name) < 1:
                raise ContextError(f"cdk context {name} must be >= 1")

    # ---- derived names (fixed so stacks can scope IAM without cross-stack cycles)
    @property
    def prefix(self) -> str:
        return f"s2s-{self.env_name}"

    @property
    def pipeline_name(self) -> str:
        return f"{self.prefix}-pipeline"

    @property
    def deploy_function_name(self) -> str:
        return f"{self.prefix}-register-deploy"

    @property
    def model_package_group(self) -> str:
        return f"{self.prefix}-models"

    @property
    def endpoint_prefix(self) -> str:
        return f"{self.prefix}-"

    @property
    def endpoint_name(self) -> str:
        return f"{self.prefix}-endpoint"

    @property
    def data_bucket_name(self) -> str:
        """Fixed name (account and region make it unique) so roles can be scoped without imports."""
        from aws_cdk import Aws

        return f"{self.prefix}-data-{Aws.ACCOUNT_ID}-{Aws.REGION}"

    @property
    def artifacts_bucket_name(self) -> str:
        from aws_cdk import Aws

        return f"{self.prefix}-artifacts-{Aws.ACCOUNT_ID}-{Aws.REGION}"

    @property
    def artifacts_prefix(self) -> str:
        return _PIPELINE_DEFAULTS["artifacts_prefix"]

    @property
    def raw_prefix(self) -> str:
        return _PIPELINE_DEFAULTS["raw_prefix"]

    def pipeline_settings(self) -> dict[str, Any]:
        """The pipeline settings read from the context, by :class:`~s2s_aws.pipeline.PipelineConfig` field."""
        return {s.name: getattr(self, s.name) for s in SETTINGS if s.context}


#: every setting the stacks read. Field names are the context keys; missing keys keep the defaults.
InfraConfig = dataclasses.make_dataclass(
    "InfraConfig",
    [(s.name, s.type, dataclasses.field(default=s.default)) for s in SETTINGS if s.context],
    bases=(_InfraSettings,), frozen=True)
InfraConfig.__module__ = __name__
InfraConfig.__doc__ = """Every setting the stacks read: :class:`_InfraSettings` plus the pipeline settings of the
context (declared on :class:`s2s_aws.pipeline.PipelineConfig`). Field names are the context keys."""
