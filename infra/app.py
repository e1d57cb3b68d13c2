#!/usr/bin/env python3
"""The s2s-aws CDK app: wires the stacks together (``npx cdk synth`` / ``npx cdk deploy``).

Settings: ``cdk.json`` context, overridable with ``-c key=value`` (see s2s_infra/config.py).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Validations

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):  # s2s_infra and the s2s_aws SDK (pipeline definition)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from s2s_infra.config import InfraConfig  # noqa: E402
from s2s_infra.image_stack import ImageStack  # noqa: E402
from s2s_infra.pipeline_stack import PipelineStack  # noqa: E402
from s2s_infra.roles_stack import RolesStack  # noqa: E402
from s2s_infra.storage_stack import StorageStack  # noqa: E402


def cdk_json_context(**overrides: object) -> dict:
    """The context of ``cdk.json`` (what ``npx cdk`` passes) with ``overrides``; for in-process apps."""
    import json

    context = json.loads((HERE / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    context.update(overrides)
    return context


def build_app(app: cdk.App) -> dict[str, cdk.Stack]:
    """Add the four stacks to ``app`` (and cdk-nag when ``nag`` is on); return them by name."""
    config = InfraConfig.from_node(app.node)
    env = cdk.Environment(account=config.account or os.environ.get("CDK_DEFAULT_ACCOUNT"),
                          region=config.region or os.environ.get("CDK_DEFAULT_REGION"))
    name = config.prefix
    storage = StorageStack(app, f"{name}-storage", config=config, env=env)
    image = ImageStack(app, f"{name}-image", config=config, env=env)
    roles = RolesStack(app, f"{name}-roles", config=config, env=env,
                       key=storage.key, repositories=image.pull_repositories)
    pipeline = PipelineStack(app, f"{name}-pipeline", config=config, env=env,
                             data_bucket=storage.data_bucket, artifacts_bucket=storage.artifacts_bucket,
                             key=storage.key, image_uri=image.image_uri,
                             execution_role=roles.execution_role, pipeline_role=roles.pipeline_role,
                             events_role=roles.events_role, deploy_role=roles.deploy_role)
    for stack in (storage, image, roles, pipeline):
        cdk.Tags.of(stack).add("project", "s2s-aws")
        cdk.Tags.of(stack).add("env", config.env_name)
    if config.nag:
        from cdk_nag import AwsSolutionsChecks

        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return {"storage": storage, "image": image, "roles": roles, "pipeline": pipeline}


if __name__ == "__main__":
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from s2s_infra.config import ContextError

    cdk_app = cdk.App()
    try:
        build_app(cdk_app)
    except ContextError as e:  # a bad -c value: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    cdk_app.synth()
