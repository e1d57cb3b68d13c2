"""Storage: a customer managed KMS key, the data bucket, the artifacts bucket and their log bucket."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .config import InfraConfig
from .nag import acknowledge


class StorageStack(Stack):
    """Buckets for raw data (``raw/``) and pipeline artifacts, encrypted with one rotating CMK.

    Every bucket: versioned, SSL-only, all public access blocked. The data and artifacts buckets log
    access to the log bucket; the data bucket sends S3 events to EventBridge (retraining trigger).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: InfraConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = RemovalPolicy.DESTROY if config.destroy_data else RemovalPolicy.RETAIN

        self.key = kms.Key(
            self, "DataKey",
            description=f"{config.prefix}: encrypts the data and artifacts buckets and job volumes",
            enable_key_rotation=True,
            removal_policy=removal,
            alias=f"alias/{config.prefix}-data",
        )

        # Server access logs only support SSE-S3 on the target bucket.
        self.log_bucket = s3.Bucket(
            self, "AccessLogBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal,
            auto_delete_objects=config.destroy_data,
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-access-logs",
                expiration=Duration.days(config.access_log_expire_days),
                noncurrent_version_expiration=Duration.days(config.noncurrent_expire_days),
            )],
        )
        acknowledge(self.log_bucket, "AwsSolutions-S1",
                    "This is the access-log bucket itself; logging it into itself would loop.")

        common = dict(
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.log_bucket,
            removal_policy=removal,
            # with destroy_data, `cdk destroy` empties the buckets (every version) before deleting them;
            # CloudFormation cannot delete a bucket that still holds objects
            auto_delete_objects=config.destroy_data,
        )
        self.data_bucket = s3.Bucket(
            self, "DataBucket",
            bucket_name=config.data_bucket_name,
            server_access_logs_prefix="data/",
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-noncurrent",
                noncurrent_version_expiration=Duration.days(config.noncurrent_expire_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )],
            **common,
        )
        # S3 -> EventBridge notifications (retraining trigger). Set on the resource directly:
        # ``event_bridge_enabled=True`` would add a custom-resource Lambda for the same setting.
        self.data_bucket.node.default_child.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        self.artifacts_bucket = s3.Bucket(
            self, "ArtifactsBucket",
            bucket_name=config.artifacts_bucket_name,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[s3.LifecycleRule(
                id="age-out-artifacts",
                transitions=[s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                                           transition_after=Duration.days(config.artifact_ia_days))],
                expiration=Duration.days(config.artifact_expire_days),
                noncurrent_version_expiration=Duration.days(config.noncurrent_expire_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )],
            **common,
        )
