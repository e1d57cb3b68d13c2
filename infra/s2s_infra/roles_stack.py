"""IAM roles, least privilege: SageMaker execution, pipeline, EventBridge trigger, deploy Lambda."""
from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .config import InfraConfig
from .nag import acknowledge

SAGEMAKER = "sagemaker.amazonaws.com"


def _arn(service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
    return (f"arn:{Aws.PARTITION}:{service}:{Aws.REGION if region else ''}:"
            f"{Aws.ACCOUNT_ID if account else ''}:{resource}")


class RolesStack(Stack):
    """The four roles. Resource ARNs are scoped to this project's buckets/prefixes, repository, key,
    log groups and name prefix; the few actions AWS only allows on ``*`` are acknowledged with a
    reason (see :data:`WILDCARD_REASONS`)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: InfraConfig,
                 key: kms.IKey,
                 repositories: list[ecr.IRepository], **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Bucket ARNs from the fixed names (no cross-stack import; readable nag finding ids).
        data_bucket = s3.Bucket.from_bucket_name(self, "DataBucket", config.data_bucket_name)
        artifacts_bucket = s3.Bucket.from_bucket_name(self, "ArtifactsBucket", config.artifacts_bucket_name)
        art = f"{config.artifacts_prefix}/*"
        raw = f"{config.raw_prefix}*"
        pipeline_arn = _arn("sagemaker", f"pipeline/{config.pipeline_name}")
        job_logs = _arn("logs", "log-group:/aws/sagemaker/*")

        # ---- execution role: processing jobs, training jobs, the hosted model
        self.execution_role = iam.Role(
            self, "ExecutionRole",
            assumed_by=iam.ServicePrincipal(SAGEMAKER),
            description=f"{config.prefix}: SageMaker processing/training jobs and endpoints",
        )
        ex = self.execution_role
        ex.add_to_policy(iam.PolicyStatement(
            sid="ReadRawData", actions=["s3:GetObject"], resources=[data_bucket.arn_for_objects(raw)]))
        ex.add_to_policy(iam.PolicyStatement(
            sid="ListRawData", actions=["s3:ListBucket"], resources=[data_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [raw, config.raw_prefix]}}))
        ex.add_to_policy(iam.PolicyStatement(
            sid="ReadWriteArtifacts",
            actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            resources=[artifacts_bucket.arn_for_objects(art)]))
        ex.add_to_policy(iam.PolicyStatement(
            sid="ListArtifacts", actions=["s3:ListBucket"], resources=[artifacts_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [art, config.artifacts_prefix]}}))
        ex.add_to_policy(iam.PolicyStatement(
            sid="UseDataKey",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
                     "kms:ReEncryptTo", "kms:DescribeKey"],
            resources=[key.key_arn]))
        ex.add_to_policy(iam.PolicyStatement(
            sid="VolumeGrants", actions=["kms:CreateGrant"], resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))
        ex.add_to_policy(iam.PolicyStatement(
            sid="PullImage",
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[r.repository_arn for r in repositories]))
        ex.add_to_policy(iam.PolicyStatement(
            sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        ex.add_to_policy(iam.PolicyStatement(
            sid="JobLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                     "logs:DescribeLogStreams"],
            resources=[job_logs, f"{job_logs}:log-stream:*"]))
        ex.add_to_policy(iam.PolicyStatement(
            sid="JobMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}}))
        acknowledge(ex, "AwsSolutions-IAM5[Resource::*]",
                    "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
                    "permissions; PutMetricData is limited to the SageMaker namespaces by condition.")
        acknowledge(ex, "AwsSolutions-IAM5[Resource::" + self._tokens(data_bucket.arn_for_objects(raw)) + "]",
                    "Read-only access to every object under the raw/ prefix the pipeline preprocesses.")
        acknowledge(ex, "AwsSolutions-IAM5[Resource::" + self._tokens(artifacts_bucket.arn_for_objects(art)) + "]",
                    "Jobs write channels, models and reports under the pipeline/ prefix with "
                    "generated job names.")
        acknowledge(ex, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
                        "<AWS::AccountId>:log-group:/aws/sagemaker/*]",
                    "SageMaker job and endpoint log groups (/aws/sagemaker/TrainingJobs, "
                    "ProcessingJobs, Endpoints/<name>) are created by the service at run time.")
        acknowledge(ex, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
                        "<AWS::AccountId>:log-group:/aws/sagemaker/*:log-stream:*]",
                    "Log streams are named after job names generated by SageMaker at run time.")

        # ---- pipeline role: SageMaker Pipelines runs the steps with it
        self.pipeline_role = iam.Role(
            self, "PipelineRole",
            assumed_by=iam.ServicePrincipal(SAGEMAKER),
            description=f"{config.prefix}: runs the SageMaker pipeline {config.pipeline_name}",
        )
        pr = self.pipeline_role
        job_arns = [_arn("sagemaker", "processing-job/pipelines-*"), _arn("sagemaker", "training-job/pipelines-*")]
        pr.add_to_policy(iam.PolicyStatement(
            sid="RunJobs",
            actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                     "sagemaker:StopProcessingJob", "sagemaker:CreateTrainingJob",
                     "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob", "sagemaker:AddTags"],
            resources=job_arns))
        pr.add_to_policy(iam.PolicyStatement(
            sid="PassExecutionRole", actions=["iam:PassRole"], resources=[ex.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}}))
        pr.add_to_policy(iam.PolicyStatement(
            sid="InvokeDeployFunction", actions=["lambda:InvokeFunction"],
            resources=[_arn("lambda", f"function:{config.deploy_function_name}")]))
        pr.add_to_policy(iam.PolicyStatement(
            sid="ReadEvaluationReports", actions=["s3:GetObject"],
            resources=[artifacts_bucket.arn_for_objects(f"{config.artifacts_prefix}/evaluation/*")]))
        pr.add_to_policy(iam.PolicyStatement(
            sid="DecryptReports", actions=["kms:Decrypt", "kms:DescribeKey"], resources=[key.key_arn]))
        pr.add_to_policy(iam.PolicyStatement(
            sid="JobVolumeKey", actions=["kms:CreateGrant"], resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))
        for arn in job_arns:
            acknowledge(pr, "AwsSolutions-IAM5[Resource::" + self._tokens(arn) + "]",
                        "SageMaker Pipelines names the jobs it starts pipelines-<execution>-<step>-...; "
                        "the prefix is all that is known before run time.")
        acknowledge(pr, "AwsSolutions-IAM5[Resource::" + self._tokens(artifacts_bucket.arn_for_objects(
                        f"{config.artifacts_prefix}/evaluation/*")) + "]",
                    "The pipeline reads evaluation.json (property file) of each training job's report.")

        # ---- EventBridge role: starts the pipeline (schedule and S3 rule)
        self.events_role = iam.Role(
            self, "TriggerRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"{config.prefix}: EventBridge starts {config.pipeline_name}",
        )
        self.events_role.add_to_policy(iam.PolicyStatement(
            sid="StartPipeline", actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn]))

        # ---- deploy Lambda role: registers the model and creates/updates the endpoint
        self.deploy_role = iam.Role(
            self, "DeployFunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{config.prefix}: the pipeline's register-and-deploy Lambda",
        )
        dr = self.deploy_role
        ep = config.endpoint_prefix
        deploy_resources = {
            "model-package": _arn("sagemaker", f"model-package/{config.model_package_group}/*"),
            "model": _arn("sagemaker", f"model/{ep}*"),
            "endpoint-config": _arn("sagemaker", f"endpoint-config/{ep}*"),
            "endpoint": _arn("sagemaker", f"endpoint/{ep}*"),
        }
        dr.add_to_policy(iam.PolicyStatement(
            sid="RegisterModel",
            actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage"],
            resources=[deploy_resources["model-package"],
                       _arn("sagemaker", f"model-package-group/{config.model_package_group}")]))
        dr.add_to_policy(iam.PolicyStatement(
            sid="Deploy",
            actions=["sagemaker:CreateModel", "sagemaker:CreateEndpointConfig", "sagemaker:CreateEndpoint",
                     "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint"],
            resources=[deploy_resources["model"], deploy_resources["endpoint-config"],
                       deploy_resources["endpoint"]]))
        dr.add_to_policy(iam.PolicyStatement(
            sid="PassExecutionRole", actions=["iam:PassRole"], resources=[ex.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}}))
        # endpoint configs carry the project key (KmsKeyId); SageMaker needs a grant on it for the
        # endpoint's storage volumes, asked for by the caller of CreateEndpointConfig
        dr.add_to_policy(iam.PolicyStatement(
            sid="EndpointVolumeKey", actions=["kms:CreateGrant"], resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}))
        dr.add_to_policy(iam.PolicyStatement(
            sid="DescribeEndpointKey", actions=["kms:DescribeKey"], resources=[key.key_arn]))
        fn_logs = _arn("logs", f"log-group:/aws/lambda/{config.deploy_function_name}")
        dr.add_to_policy(iam.PolicyStatement(
            sid="FunctionLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[fn_logs, f"{fn_logs}:log-stream:*"]))
        for name, arn in deploy_resources.items():
            acknowledge(dr, "AwsSolutions-IAM5[Resource::" + self._tokens(arn) + "]",
                        f"Each run creates a new {name} version/name under this project's prefix; "
                        "names are generated at run time.")
        acknowledge(dr, "AwsSolutions-IAM5[Resource::" + self._tokens(f"{fn_logs}:log-stream:*") + "]",
                    "Lambda names its log streams at run time; scoped to this function's log group.")

    @staticmethod
    def _tokens(arn: str) -> str:
        return (arn.replace(Aws.PARTITION, "<AWS::Partition>").replace(Aws.REGION, "<AWS::Region>")
                .replace(Aws.ACCOUNT_ID, "<AWS::AccountId>"))
