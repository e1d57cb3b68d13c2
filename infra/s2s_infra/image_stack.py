"""The algorithm image: the project's ECR repository and (optionally) a CDK Docker image asset."""
from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from .config import InfraConfig

REPO_ROOT = Path(__file__).resolve().parents[2]

# Never part of the image build context (it is the repository root).
DOCKER_EXCLUDES = [
    ".git", ".venv", "**/__pycache__", "*.pyc", "infra/node_modules", "infra/cdk.out", "cdk.out",
    ".pytest_cache", ".hypothesis", "s2s-quickstart", "build", "dist", "*.egg-info",
]


class ImageStack(Stack):
    """ECR repository (scan on push, immutable tags, keep the last N images) and the image URI.

    ``image_source=asset`` (default): ``containers/seq2seq/Dockerfile`` becomes a CDK Docker image
    asset. Synth only stages the build context; ``cdk deploy`` builds and pushes the image (Docker
    needed there) to the CDK bootstrap asset repository. ``image_source=ecr``: the pipeline uses
    ``<repository>:<image_tag>`` from this stack's repository (pushed by CI), and nothing is built.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: InfraConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.repository = ecr.Repository(
            self, "AlgorithmRepository",
            repository_name=f"{config.prefix}-seq2seq",
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.KMS,
            lifecycle_rules=[ecr.LifecycleRule(
                description=f"keep the last {config.ecr_keep_images} images",
                max_image_count=config.ecr_keep_images,
            )],
            removal_policy=RemovalPolicy.DESTROY if config.destroy_data else RemovalPolicy.RETAIN,
            empty_on_delete=config.destroy_data,
        )
        #: repositories the execution role may pull from
        self.pull_repositories: list[ecr.IRepository] = [self.repository]
        self.asset: ecr_assets.DockerImageAsset | None = None

        if config.image_source == "asset":
            directory = Path(config.docker_directory) if config.docker_directory else REPO_ROOT
            dockerfile = directory / config.dockerfile
            if not dockerfile.is_file():
                raise FileNotFoundError(
                    f"image_source=asset needs the Dockerfile {dockerfile}, which does not exist. "
                    "Build it first, or synth with -c image_source=ecr to use an image pushed to "
                    f"the {config.prefix}-seq2seq repository with tag {config.image_tag}.")
            self.asset = ecr_assets.DockerImageAsset(
                self, "AlgorithmImage",
                directory=str(directory),
                file=config.dockerfile,
                exclude=DOCKER_EXCLUDES,
                platform=ecr_assets.Platform.LINUX_AMD64,
            )
            self.image_uri = self.asset.image_uri
            self.pull_repositories.append(self.asset.repository)
        else:
            self.image_uri = self.repository.repository_uri_for_tag(config.image_tag)
            Annotations.of(self).add_info(
                f"image_source=ecr: the pipeline runs {config.prefix}-seq2seq:{config.image_tag}; "
                "push that tag before starting the pipeline")
        CfnOutput(self, "ImageUri", value=self.image_uri)
        CfnOutput(self, "RepositoryUri", value=self.repository.repository_uri)
