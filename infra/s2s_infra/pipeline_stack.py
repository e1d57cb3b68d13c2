"""The SageMaker Pipeline, its model package group, the register-and-deploy Lambda, the triggers."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsii
from aws_cdk import Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import InfraConfig
from .nag import acknowledge

FUNCTION_DIR = Path(__file__).resolve().parent / "functions" / "deploy"

#: placeholders put into the definition, substituted by Fn::Sub (AWS:: pseudo parameters too)
ROLE_ARN_PLACEHOLDER = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${ExecutionRoleName}"
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def build_pipeline_definition(config: InfraConfig) -> str:
    """The pipeline definition JSON with ``${...}`` placeholders for deploy-time values.

    The deploy-time values are the settings that declare a placeholder (substituted by ``Fn::Sub``
    with the ``variables`` of :class:`PipelineStack`), the role ARN with the partition and the
    project key; the names are the stack's; the rest comes from the context.
    """
    from s2s_aws.pipeline import SETTINGS, PipelineConfig, definition_json

    deploy_time = {s.name: s.placeholder for s in SETTINGS if s.placeholder}
    deploy_time.update(role_arn=ROLE_ARN_PLACEHOLDER, kms_key_arn="${KmsKeyArn}")
    cfg = PipelineConfig(
        **deploy_time,
        pipeline_name=config.pipeline_name,
        model_package_group=config.model_package_group,
        endpoint_name=config.endpoint_name,
        raw_prefix=config.raw_prefix,
        artifacts_prefix=config.artifacts_prefix,
        **config.pipeline_settings(),
    )
    return definition_json(cfg, indent=None)


@jsii.implements(events.IRuleTarget)
class _PipelineTarget:
    """EventBridge target: start a SageMaker pipeline execution, with a role, retries and a DLQ."""

    def __init__(self, pipeline_arn: str, role: iam.IRole, dlq: sqs.IQueue,
                 parameters: dict[str, str]) -> None:
        self._arn, self._role, self._dlq, self._params = pipeline_arn, role, dlq, parameters

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:  # noqa: A002
        self._dlq.add_to_resource_policy(iam.PolicyStatement(
            sid=f"EventBridgeDlq{rule.node.id}",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sqs:SendMessage"],
            resources=[self._dlq.queue_arn],
            conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
        ))
        return events.RuleTargetConfig(
            arn=self._arn,
            role=self._role,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self._dlq.queue_arn),
            retry_policy=events.CfnRule.RetryPolicyProperty(maximum_event_age_in_seconds=3600,
                                                            maximum_retry_attempts=10),
        )

    def add_to(self, rule: events.Rule) -> None:
        """Add this target to ``rule`` (the only target), with its pipeline parameters.

        ``RuleTargetConfig`` has no field for pipeline parameters, so they are set on the
        ``AWS::Events::Rule`` resource directly. ``$.``-values are EventBridge dynamic paths.
        """
        rule.add_target(self)
        cfn_rule = rule.node.default_child
        cfn_rule.add_property_override("Targets.0.SageMakerPipelineParameters", {
            "PipelineParameterList": [{"Name": k, "Value": v} for k, v in self._params.items()]})


class PipelineStack(Stack):
    """``AWS::SageMaker::Pipeline`` built from :func:`s2s_aws.pipeline.build_definition`, plus:

    * the model package group the pipeline registers into;
    * the register-and-deploy Lambda (the pipeline's Lambda step);
    * retraining triggers: an EventBridge schedule and a rule on new objects under the data
      bucket's ``raw/`` prefix, both starting the pipeline, with a dead-letter queue.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: InfraConfig,
                 data_bucket: s3.IBucket, artifacts_bucket: s3.IBucket, key: kms.IKey, image_uri: str,
                 execution_role: iam.IRole, pipeline_role: iam.IRole, events_role: iam.IRole,
                 deploy_role: iam.IRole, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)

        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self, "ModelPackageGroup",
            model_package_group_name=config.model_package_group,
            model_package_group_description=f"{config.prefix}: seq2seq models that passed the BLEU gate",
        )
        self.model_package_group.apply_removal_policy(
            RemovalPolicy.DESTROY if config.destroy_data else RemovalPolicy.RETAIN)

        log_group = logs.LogGroup(
            self, "DeployFunctionLogs",
            log_group_name=f"/aws/lambda/{config.deploy_function_name}",
            retention=_retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.deploy_function = lambda_.Function(
            self, "DeployFunction",
            function_name=config.deploy_function_name,
            description="s2s pipeline step: register the model package, create/update the endpoint",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(FUNCTION_DIR)),
            role=deploy_role,
            timeout=Duration.minutes(5),
            memory_size=256,
            log_group=log_group,
            environment={"ENDPOINT_PREFIX": config.endpoint_prefix, "KMS_KEY_ARN": key.key_arn},
        )
        self.deploy_function.node.add_dependency(deploy_role)

        definition = build_pipeline_definition(config)
        variables = {
            "ExecutionRoleName": Fn.select(1, Fn.split("/", execution_role.role_arn)),
            "ImageUri": image_uri,
            "DataBucket": data_bucket.bucket_name,
            "ArtifactsBucket": artifacts_bucket.bucket_name,
            "DeployFunctionArn": self.deploy_function.function_arn,
            "KmsKeyArn": key.key_arn,
        }
        unknown = {v for v in _PLACEHOLDER.findall(definition)
                   if v not in variables and not v.startswith("AWS::")}
        if unknown:
            raise ValueError(f"pipeline definition has unresolved placeholders {sorted(unknown)}; "
                             "a value contains '${' - remove it or extend the substitution map")
        self.pipeline = sagemaker.CfnPipeline(
            self, "Pipeline",
            pipeline_name=config.pipeline_name,
            pipeline_description="s2s retraining: preprocess, train, evaluate, BLEU gate, register/deploy",
            role_arn=pipeline_role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": Fn.sub(definition, variables)},
        )
        self.pipeline.node.add_dependency(self.model_package_group)
        self.pipeline.node.add_dependency(pipeline_role)
        pipeline_arn = f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:pipeline/{config.pipeline_name}"

        # ---- retraining triggers
        self.dead_letter_queue = sqs.Queue(
            self, "TriggerDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.dead_letter_queue, "AwsSolutions-SQS3",
                    "This queue is itself the dead-letter queue of the retraining rules.")
        self.rules: list[events.Rule] = []
        if config.schedule:
            schedule_rule = events.Rule(
                self, "RetrainSchedule",
                description=f"{config.prefix}: scheduled retraining",
                schedule=events.Schedule.expression(config.schedule),
            )
            _PipelineTarget(pipeline_arn, events_role, self.dead_letter_queue,
                            {"DataVersion": "$.time"}).add_to(schedule_rule)
            self.rules.append(schedule_rule)
        key_filter: dict = {"prefix": config.raw_prefix}
        if config.raw_trigger_suffix:
            key_filter = {"wildcard": f"{config.raw_prefix}*{config.raw_trigger_suffix}"}
        raw_rule = events.Rule(
            self, "NewRawDataRule",
            description=f"{config.prefix}: retrain when new objects land under {config.raw_prefix}",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [data_bucket.bucket_name]}, "object": {"key": [key_filter]}},
            ),
        )
        _PipelineTarget(pipeline_arn, events_role, self.dead_letter_queue,
                        {"DataVersion": "$.id"}).add_to(raw_rule)
        self.rules.append(raw_rule)

        CfnOutput(self, "PipelineName", value=config.pipeline_name)
        CfnOutput(self, "ModelPackageGroupName", value=config.model_package_group)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letter_queue.queue_url)


def _retention(days: int) -> logs.RetentionDays:
    allowed = sorted((int(m.value) for m in logs.RetentionDays if str(m.value).isdigit()))
    for value in allowed:
        if value >= days:
            return logs.RetentionDays(value)
    return logs.RetentionDays.TEN_YEARS
