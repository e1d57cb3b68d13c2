"""Hosting: model -> endpoint config -> endpoint, updates (blue/green), autoscaling, deletion.

Example::

    endpoint = job.deploy(instance_type="ml.m5.xlarge")            # waits until InService
    endpoint.enable_autoscaling(min_instances=1, max_instances=4, target_invocations_per_instance=200)
    endpoint.update(new_job.model_artifacts,
                    deployment_config=blue_green(rollback_alarms=["s2s-5xx"]))
    print(endpoint.translate(["can you drive a car ?"])[0].target)
    endpoint.delete()                                              # endpoint, config and model

Models and endpoint configs always get fresh unique names, so leftovers of an earlier run never
collide; deploying to an endpoint name that already exists updates that endpoint (or replaces it
when it is Failed) instead of failing.
"""
from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ._aws import (aws_error, base_of, error_code, is_not_found, log_url, make_tags, split_s3_uri, unique_name,
                   wait_for)
from ._resource import Resource
from .errors import AWSOperationError, EndpointFailed, InputError, WaitTimeout

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger(__name__)

__all__ = ["Endpoint", "AutoScaling", "deploy", "create_model", "create_endpoint_config", "blue_green",
           "VOCAB_TAG", "DEFAULT_VARIANT"]

DEFAULT_VARIANT = "AllTraffic"
#: model tag holding the S3 URI of the vocab channel, so an Endpoint can find its vocabularies
VOCAB_TAG = "s2s-aws:vocab"
ENDPOINT_TERMINAL = ("InService", "Failed", "OutOfService", "UpdateRollbackFailed", "Deleting")
DEFAULT_TIMEOUT_S = 3600.0


def create_model(session: Session, model_data: str, *, image_uri: str | None = None, model_name: str | None = None,
                 base_name: str = "seq2seq", environment: Mapping[str, str] | None = None,
                 subnets: Sequence[str] = (), security_group_ids: Sequence[str] = (),
                 network_isolation: bool = False, vocab_uri: str | None = None,
                 tags: Mapping[str, str] | None = None) -> str:
    """``CreateModel`` for a ``model.tar.gz``; returns the model name (fresh if ``model_name`` is taken)."""
    split_s3_uri(model_data)
    sm = session.sagemaker
    image = session.resolve_image(image_uri)
    name = model_name or unique_name(base_name)
    if model_name:
        try:
            sm.describe_model(ModelName=model_name)
            name = unique_name(base_of(model_name))
            logger.warning("model %s already exists; creating %s instead", model_name, name)
        except Exception as e:
            if not is_not_found(e):
                raise aws_error(f"checking model {model_name}", e) from e
    extra = dict(tags or {})
    if vocab_uri:
        extra[VOCAB_TAG] = vocab_uri
    container: dict[str, Any] = {"Image": image, "ModelDataUrl": model_data}
    if environment:
        container["Environment"] = {str(k): str(v) for k, v in environment.items()}
    request: dict[str, Any] = {"ModelName": name, "PrimaryContainer": container,
                               "ExecutionRoleArn": session.require_role(),
                               "Tags": make_tags(session.run_id, extra)}
    if network_isolation:
        request["EnableNetworkIsolation"] = True
    if subnets:
        request["VpcConfig"] = {"Subnets": list(subnets), "SecurityGroupIds": list(security_group_ids)}
    try:
        sm.create_model(**request)
    except Exception as e:
        raise aws_error(f"creating model {name}", e, "check the role ARN and the image URI") from e
    logger.info("created model %s", name)
    return name


def create_endpoint_config(session: Session, model_name: str, *, instance_type: str = "ml.m5.xlarge",
                           initial_instance_count: int = 1, config_name: str | None = None,
                           base_name: str = "seq2seq", variant_name: str = DEFAULT_VARIANT,
                           kms_key: str | None = None, tags: Mapping[str, str] | None = None) -> str:
    """``CreateEndpointConfig`` with one variant; returns the config name (always fresh)."""
    if not instance_type.startswith("ml."):
        raise InputError(f"instance_type {instance_type!r} is not a SageMaker instance type; use e.g. ml.m5.xlarge")
    if int(initial_instance_count) < 1:
        raise InputError(f"initial_instance_count must be >= 1, got {initial_instance_count}")
    name = config_name or unique_name(base_name)
    request: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [{"VariantName": variant_name, "ModelName": model_name,
                                "InstanceType": instance_type,
                                "InitialInstanceCount": int(initial_instance_count),
                                "InitialVariantWeight": 1.0}],
        "Tags": make_tags(session.run_id, tags),
    }
    if kms_key:
        request["KmsKeyId"] = kms_key
    try:
        session.sagemaker.create_endpoint_config(**request)
    except Exception as e:
        raise aws_error(f"creating endpoint config {name}", e) from e
    logger.info("created endpoint config %s", name)
    return name


def blue_green(*, traffic: str = "ALL_AT_ONCE", step_percent: int = 10, wait_interval_s: int = 300,
               termination_wait_s: int = 300, max_execution_timeout_s: int | None = None,
               rollback_alarms: Sequence[str] = ()) -> dict[str, Any]:
    """An ``UpdateEndpoint`` ``DeploymentConfig``: blue/green traffic shifting with optional auto-rollback.

    ``traffic``: ``ALL_AT_ONCE``, ``CANARY`` (``step_percent`` of capacity first) or ``LINEAR``
    (``step_percent`` at a time). ``rollback_alarms``: CloudWatch alarm names; if one fires during
    the baking period SageMaker rolls back to the old fleet.
    """
    traffic = traffic.upper()
    routing: dict[str, Any] = {"Type": traffic, "WaitIntervalInSeconds": int(wait_interval_s)}
    size = {"Type": "CAPACITY_PERCENT", "Value": int(step_percent)}
    if traffic == "CANARY":
        routing["CanarySize"] = size
    elif traffic == "LINEAR":
        routing["LinearStepSize"] = size
    elif traffic != "ALL_AT_ONCE":
        raise InputError(f"traffic {traffic!r} is not one of ALL_AT_ONCE, CANARY, LINEAR")
    policy: dict[str, Any] = {"TrafficRoutingConfiguration": routing,
                              "TerminationWaitInSeconds": int(termination_wait_s)}
    if max_execution_timeout_s:
        policy["MaximumExecutionTimeoutInSeconds"] = int(max_execution_timeout_s)
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
    if rollback_alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in rollback_alarms]}
    return config


@dataclass
class AutoScaling:
    """Target-tracking autoscaling of a variant on ``SageMakerVariantInvocationsPerInstance``."""

    min_instances: int = 1
    max_instances: int = 2
    target_invocations_per_instance: float = 100.0
    scale_in_cooldown_s: int = 300
    scale_out_cooldown_s: int = 60

    def validate(self) -> None:
        if not 1 <= int(self.min_instances) <= int(self.max_instances):
            raise InputError(f"autoscaling needs 1 <= min_instances <= max_instances, got "
                             f"{self.min_instances}..{self.max_instances}")
        if self.target_invocations_per_instance <= 0:
            raise InputError("target_invocations_per_instance must be > 0")


class Endpoint(Resource):
    """A SageMaker endpoint serving the seq2seq algorithm.

    ``vocab_dir`` (a prep or model directory holding ``vocab.src.json``/``vocab.trg.json``) or
    ``vocab_uri`` (the S3 vocab channel) are needed only for RecordIO-protobuf translation; when
    neither is given, the model's ``s2s-aws:vocab`` tag or the session's vocab channel is used.
    """

    kind = "endpoint"
    describe_method = "describe_endpoint"
    name_parameter = "EndpointName"
    status_field = "EndpointStatus"
    terminal_statuses = ENDPOINT_TERMINAL
    console_kind = "endpoints"
    not_found_hint = "; check the name and region, or deploy it (`s2s-aws deploy`)"

    def __init__(self, session: Session, name: str, *, vocab_dir: str | os.PathLike | None = None,
                 vocab_uri: str | None = None):
        super().__init__(session, name)
        self.vocab_dir = vocab_dir
        self.vocab_uri = vocab_uri
        self._vocab: tuple[dict[str, int], dict[str, int]] | None = None

    def exists(self) -> bool:
        try:
            self.describe()
            return True
        except InputError:
            return False

    @property
    def log_url(self) -> str:
        return log_url(self.session.region, f"/aws/sagemaker/Endpoints/{self.name}")

    def _timeout_error(self, desc: dict[str, Any], elapsed: float) -> WaitTimeout:
        return WaitTimeout(f"endpoint {self.name} is still {desc['EndpointStatus']} after {elapsed:.0f}s; "
                           f"it keeps going on SageMaker. Wait again with Endpoint.wait() or check "
                           f"{self.console_url}")

    def config_name(self) -> str:
        return self.describe()["EndpointConfigName"]

    def model_names(self, config_name: str | None = None) -> list[str]:
        config = self.session.sagemaker.describe_endpoint_config(EndpointConfigName=config_name or self.config_name())
        return [v["ModelName"] for v in config.get("ProductionVariants", [])]

    def wait(self, timeout: float | None = DEFAULT_TIMEOUT_S, *, expect_config: str | None = None,
             progress: bool | None = None) -> dict[str, Any]:
        """Wait until InService; EndpointFailed when it fails or an update was rolled back."""
        desc = self._poll_until_terminal(timeout, progress=progress)
        status = desc["EndpointStatus"]
        if status != "InService":
            reason = desc.get("FailureReason")
            raise EndpointFailed(f"endpoint {self.name} is {status}: {reason or 'no reason given'}. "
                                 f"Logs: log group /aws/sagemaker/Endpoints/{self.name} ({self.log_url}). Fix the model or config and deploy again "
                                 f"(`s2s-aws deploy --endpoint-name {self.name}` replaces it)",
                                 endpoint_name=self.name, status=status, reason=reason)
        if expect_config and desc.get("EndpointConfigName") != expect_config:
            reason = desc.get("FailureReason") or "the new config did not take over"
            raise EndpointFailed(f"update of endpoint {self.name} was rolled back to "
                                 f"{desc.get('EndpointConfigName')}: {reason}. Check the rollback alarms and "
                                 f"the new model's logs (log group /aws/sagemaker/Endpoints/{self.name})",
                                 endpoint_name=self.name, status="RolledBack", reason=reason)
        return desc

    # ------------------------------------------------------------ changes
    def update(self, model_data: str | None = None, *, model_name: str | None = None, image_uri: str | None = None,
               instance_type: str | None = None, initial_instance_count: int | None = None,
               deployment_config: Mapping[str, Any] | None = None, wait: bool = True,
               timeout: float | None = DEFAULT_TIMEOUT_S, delete_previous: bool = False,
               vocab_uri: str | None = None) -> str:
        """Point the endpoint at a new model through a new endpoint config; returns the config name.

        Give ``model_data`` (a ``model.tar.gz``: a model is created) or an existing ``model_name``.
        Instance type/count default to the current variant's. ``deployment_config`` (see
        :func:`blue_green`) makes it a blue/green update with optional auto-rollback.
        ``delete_previous`` removes the old config and model once the new one is InService.
        """
        if (model_data is None) == (model_name is None):
            raise InputError("Endpoint.update needs exactly one of model_data (S3 model.tar.gz) or model_name")
        sm = self.session.sagemaker
        old_desc = self.describe()
        if old_desc["EndpointStatus"] not in ("InService",):
            raise InputError(f"endpoint {self.name} is {old_desc['EndpointStatus']}; it can be updated only "
                             "when InService (wait for it, or delete and deploy again)")
        old_config_name = old_desc["EndpointConfigName"]
        old_config = sm.describe_endpoint_config(EndpointConfigName=old_config_name)
        variant = old_config["ProductionVariants"][0]
        base = base_of(self.name)
        if model_data is not None:
            model_name = create_model(self.session, model_data, image_uri=image_uri, base_name=base,
                                      vocab_uri=vocab_uri or self.vocab_uri)
        assert model_name is not None
        config_name = create_endpoint_config(
            self.session, model_name, instance_type=instance_type or variant["InstanceType"],
            initial_instance_count=initial_instance_count or variant.get("InitialInstanceCount", 1),
            base_name=base, variant_name=variant["VariantName"], kms_key=old_config.get("KmsKeyId"))
        request: dict[str, Any] = {"EndpointName": self.name, "EndpointConfigName": config_name}
        if deployment_config:
            request["DeploymentConfig"] = dict(deployment_config)
        try:
            sm.update_endpoint(**request)
        except Exception as e:
            raise aws_error(f"updating endpoint {self.name}", e,
                            f"the endpoint still serves {old_config_name}; new config {config_name} is unused") from e
        logger.info("updating endpoint %s to %s", self.name, config_name)
        if wait:
            self.wait(timeout, expect_config=config_name)
            if delete_previous:
                old_models = [v["ModelName"] for v in old_config["ProductionVariants"]]
                _delete_quietly(sm.delete_endpoint_config, EndpointConfigName=old_config_name)
                for m in old_models:
                    if m != model_name:
                        _delete_quietly(sm.delete_model, ModelName=m)
        return config_name

    def _scaling_resource(self, variant: str) -> str:
        return f"endpoint/{self.name}/variant/{variant}"

    def enable_autoscaling(self, scaling: AutoScaling | None = None, *, variant: str = DEFAULT_VARIANT,
                           **kwargs: Any) -> None:
        """Register the variant with Application Auto Scaling and put a target-tracking policy."""
        scaling = scaling or AutoScaling(**kwargs)
        scaling.validate()
        aas = self.session.client("application-autoscaling")
        resource = self._scaling_resource(variant)
        try:
            aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                         ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                                         MinCapacity=int(scaling.min_instances),
                                         MaxCapacity=int(scaling.max_instances))
            aas.put_scaling_policy(
                PolicyName=f"{self.name}-invocations", ServiceNamespace="sagemaker", ResourceId=resource,
                ScalableDimension="sagemaker:variant:DesiredInstanceCount", PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": float(scaling.target_invocations_per_instance),
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                    "ScaleInCooldown": int(scaling.scale_in_cooldown_s),
                    "ScaleOutCooldown": int(scaling.scale_out_cooldown_s),
                })
        except Exception as e:
            raise aws_error(f"enabling autoscaling on {resource}", e) from e
        logger.info("autoscaling %s: %d..%d instances", resource, scaling.min_instances, scaling.max_instances)

    def disable_autoscaling(self, variant: str = DEFAULT_VARIANT) -> None:
        """Deregister the variant's scalable target (nothing happens if none is registered)."""
        aas = self.session.client("application-autoscaling")
        try:
            aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=self._scaling_resource(variant),
                                           ScalableDimension="sagemaker:variant:DesiredInstanceCount")
        except Exception as e:
            if error_code(e) not in ("ObjectNotFoundException", "ValidationException") and not is_not_found(e):
                raise aws_error(f"disabling autoscaling on {self.name}", e) from e

    def delete(self, *, wait: bool = False, timeout: float | None = 900) -> list[str]:
        """Delete the endpoint, its endpoint config and its models; returns what was deleted."""
        sm = self.session.sagemaker
        deleted: list[str] = []
        try:
            desc = self.describe()
        except InputError:
            logger.info("endpoint %s does not exist; nothing to delete", self.name)
            return deleted
        config_name = desc["EndpointConfigName"]
        try:
            models = self.model_names(config_name)
        except Exception as e:
            if not is_not_found(e):
                raise aws_error(f"describing endpoint config {config_name}", e) from e
            models = []
        for variant in desc.get("ProductionVariants", []) or [{"VariantName": DEFAULT_VARIANT}]:
            try:
                self.disable_autoscaling(variant.get("VariantName", DEFAULT_VARIANT))
            except AWSOperationError as e:
                logger.warning("%s", e)
        if _delete_quietly(sm.delete_endpoint, EndpointName=self.name):
            deleted.append(f"endpoint/{self.name}")
        if _delete_quietly(sm.delete_endpoint_config, EndpointConfigName=config_name):
            deleted.append(f"endpoint-config/{config_name}")
        for m in models:
            if _delete_quietly(sm.delete_model, ModelName=m):
                deleted.append(f"model/{m}")
        if wait:
            def gone() -> dict[str, Any]:
                try:
                    return self.describe()
                except InputError:
                    return {"EndpointStatus": "Deleted"}
            wait_for(gone, lambda d: d["EndpointStatus"], ("Deleted", "Failed"), timeout=timeout,
                     backoff=self.session.backoff, clock=self.session.clock)
        logger.info("deleted %s", ", ".join(deleted))
        return deleted

    # ------------------------------------------------------------ inference
    def _find_vocab_uri(self) -> str | None:
        if self.vocab_uri:
            return self.vocab_uri
        sm = self.session.sagemaker
        try:
            for model in self.model_names():
                arn = sm.describe_model(ModelName=model)["ModelArn"]
                for tag in sm.list_tags(ResourceArn=arn).get("Tags", []):
                    if tag["Key"] == VOCAB_TAG:
                        return tag["Value"]
        except Exception as e:  # fall back to the session's channel
            logger.debug("no vocab tag found on %s: %s", self.name, e)
        if self.session.bucket:
            from .contract.layout import VOCAB_CHANNEL

            return self.session.s3_uri(VOCAB_CHANNEL) + "/"
        return None

    def vocab(self) -> tuple[dict[str, int], dict[str, int]]:
        """``(source, target)`` vocabularies, from ``vocab_dir`` or downloaded from the vocab channel."""
        if self._vocab is not None:
            return self._vocab
        from .contract import vocab as vocab_mod
        from .contract.layout import SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE, VOCAB_CHANNEL, VOCAB_FILES

        if self.vocab_dir is not None:
            root = Path(self.vocab_dir)
            if (root / VOCAB_CHANNEL).is_dir() and not (root / SOURCE_VOCAB_FILE).is_file():
                root = root / VOCAB_CHANNEL
            self._vocab = (vocab_mod.load_vocab(root / SOURCE_VOCAB_FILE), vocab_mod.load_vocab(root / TARGET_VOCAB_FILE))
            return self._vocab
        uri = self._find_vocab_uri()
        if not uri:
            raise InputError(f"endpoint {self.name}: no vocabularies for RecordIO-protobuf translation; pass "
                             "vocab_dir= (your prep dir) or vocab_uri= (the S3 vocab channel)")
        bucket, key = split_s3_uri(uri)
        key = key.rstrip("/")
        loaded = []
        with tempfile.TemporaryDirectory(prefix="s2s-vocab-") as tmp:
            for fname in VOCAB_FILES:
                local = Path(tmp) / fname
                full_key = f"{key}/{fname}" if key else fname
                try:
                    self.session.s3.download_file(bucket, full_key, str(local))
                except Exception as e:
                    raise aws_error(f"downloading s3://{bucket}/{full_key}", e,
                                    "pass vocab_dir= with your local prep directory instead") from e
                loaded.append(vocab_mod.load_vocab(local))
        self._vocab = (loaded[0], loaded[1])
        return self._vocab

    def translate(self, sentences: Sequence[str] | str, *, attention: bool = False,
                  content_type: str = "application/json", **kwargs: Any):
        """Translate tokenized sentences; returns ``list[TranslationResult]`` (``.target``, ``.matrix``).

        ``content_type``: ``application/json`` (attention available) or
        ``application/x-recordio-protobuf`` (token ids through the vocabularies).
        """
        from .runtime import JSON, translate

        if isinstance(sentences, str):
            sentences = [sentences]
        vocab = None if content_type == JSON else self.vocab()
        return translate(self.session.client("sagemaker-runtime"), self.name, list(sentences),
                         attention=attention, content_type=content_type, vocab=vocab, **kwargs)


def _delete_quietly(fn: Any, **kwargs: Any) -> bool:
    """Call a delete API; False when the resource is already gone."""
    try:
        fn(**kwargs)
        return True
    except Exception as e:
        if is_not_found(e) or "being deleted" in str(e).lower():
            return False
        raise aws_error(f"deleting {next(iter(kwargs.values()))}", e) from e


def deploy(session: Session, model_data: str, *, instance_type: str = "ml.m5.xlarge", initial_instance_count: int = 1,
           endpoint_name: str | None = None, image_uri: str | None = None, base_name: str = "seq2seq",
           model_name: str | None = None, vocab_uri: str | None = None, vocab_dir: str | None = None,
           environment: Mapping[str, str] | None = None, kms_key: str | None = None,
           autoscaling: AutoScaling | None = None, deployment_config: Mapping[str, Any] | None = None,
           tags: Mapping[str, str] | None = None, wait: bool = True,
           timeout: float | None = DEFAULT_TIMEOUT_S) -> Endpoint:
    """Host ``model_data`` (a ``model.tar.gz``) on an endpoint and wait until it is InService.

    A new model and endpoint config (unique names) are always created. If ``endpoint_name``
    already exists and is InService it is updated (``deployment_config`` applies); if it is
    Failed it is deleted and created again; otherwise a new endpoint is created.
    """
    if autoscaling is not None:
        autoscaling.validate()
    endpoint = Endpoint(session, endpoint_name or unique_name(base_name), vocab_dir=vocab_dir, vocab_uri=vocab_uri)
    existing: dict[str, Any] | None = None
    if endpoint_name:
        try:
            existing = endpoint.describe()
        except InputError:
            existing = None
    if existing is not None and existing["EndpointStatus"] in ("Creating", "Updating", "SystemUpdating"):
        logger.info("endpoint %s is %s; waiting before updating it", endpoint.name, existing["EndpointStatus"])
        try:
            existing = endpoint.wait(timeout)
        except EndpointFailed:
            existing = endpoint.describe()
    if existing is not None and existing["EndpointStatus"] != "InService":
        logger.warning("endpoint %s is %s; deleting it and creating it again", endpoint.name, existing["EndpointStatus"])
        endpoint.delete(wait=True, timeout=timeout)
        existing = None

    model = create_model(session, model_data, image_uri=image_uri, model_name=model_name, base_name=base_name,
                         environment=environment, vocab_uri=vocab_uri, tags=tags)
    if existing is not None:
        logger.info("endpoint %s exists; updating it to model %s", endpoint.name, model)
        endpoint.update(model_name=model, instance_type=instance_type, initial_instance_count=initial_instance_count,
                        deployment_config=deployment_config, wait=wait, timeout=timeout)
    else:
        config = create_endpoint_config(session, model, instance_type=instance_type,
                                        initial_instance_count=initial_instance_count, base_name=base_name,
                                        kms_key=kms_key, tags=tags)
        try:
            session.sagemaker.create_endpoint(EndpointName=endpoint.name, EndpointConfigName=config,
                                              Tags=make_tags(session.run_id, tags))
        except Exception as e:
            raise aws_error(f"creating endpoint {endpoint.name}", e,
                            f"model {model} and config {config} were created; `s2s-aws cleanup --run-id "
                            f"{session.run_id}` removes them") from e
        logger.info("creating endpoint %s", endpoint.name)
        if wait:
            endpoint.wait(timeout)
    if autoscaling is not None:
        endpoint.enable_autoscaling(autoscaling)
    return endpoint
