"""CDK stacks: assertions on every template, cdk-nag AwsSolutions with zero unacknowledged findings,
cfn-lint on every synthesized template, and ``npx cdk synth`` without Docker being run.

The app is synthesized ONCE per session (jsii is slow); every test reads that synthesis.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra_utils import INFRA, WILDCARD_ONLY, iam_statements

cdk = pytest.importorskip("aws_cdk")
from aws_cdk.assertions import Match, Template  # noqa: E402


def _docker_context(tmp: Path) -> Path:
    ctx = tmp / "docker-context"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    (ctx / "hello.txt").write_text("hi\n")
    return ctx


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """The whole app (image asset mode, nag on) synthesized once: (stacks, outdir, error or None)."""
    from app import build_app, cdk_json_context

    tmp = tmp_path_factory.mktemp("cdk")
    ctx = _docker_context(tmp)
    outdir = tmp / "cdk.out"
    app = cdk.App(outdir=str(outdir), context=cdk_json_context(
        image_source="asset", docker_directory=str(ctx), dockerfile="Dockerfile"))
    stacks = build_app(app)
    error = None
    try:
        app.synth()
    except Exception as e:  # cdk-nag findings surface as a validation failure of synth
        error = e
    return stacks, outdir, error, app


@pytest.fixture(scope="session")
def templates(synth):
    stacks, _, error, _ = synth
    assert error is None, f"synth failed: {error}"
    return {name: Template.from_stack(stack) for name, stack in stacks.items()}


def _resources(template: Template, rtype: str) -> dict:
    return template.find_resources(rtype)


# ----------------------------------------------------------------------------------------- nag
def test_cdk_nag_has_no_unacknowledged_findings(synth):
    _, outdir, error, _ = synth
    report = outdir / "validation-report.json"
    findings = []
    if report.exists():
        for plugin in json.loads(report.read_text()).get("pluginReports", []):
            findings += [(v["ruleName"], [c["constructPath"] for c in v["violatingConstructs"]])
                         for v in plugin.get("violations", [])]
    assert error is None and not findings, f"cdk-nag findings: {findings or error}"


def test_every_acknowledgment_has_a_reason(synth):
    _, _, _, app = synth
    acks: dict[str, str] = {}

    def walk(c):
        for m in c.node.metadata:
            if m.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                acks.update({f"{c.node.path}:{k}": v for k, v in m.data.items()})
        for child in c.node.children:
            walk(child)

    walk(app)
    assert len(acks) >= 5
    for rule, reason in acks.items():
        assert "AwsSolutions-" in rule
        assert isinstance(reason, str) and len(reason) >= 20, rule


def test_nag_catches_a_noncompliant_bucket(tmp_path):
    """The nag set-up used by the app really fails synth on a finding (the check can fail)."""
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad")
    s3.Bucket(stack, "Plain")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(Exception, match="[Vv]alidation"):
        app.synth()


# ------------------------------------------------------------------------------------- storage
def test_buckets_encrypted_versioned_private_logged(templates):
    t = templates["storage"]
    buckets = _resources(t, "AWS::S3::Bucket")
    assert len(buckets) == 3
    kms_buckets = 0
    for logical, res in buckets.items():
        props = res["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}, logical
        assert res["DeletionPolicy"] == "Retain", logical
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        if sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms":
            kms_buckets += 1
            assert "KMSMasterKeyID" in sse["ServerSideEncryptionByDefault"]
            assert sse["BucketKeyEnabled"] is True
            assert "DestinationBucketName" in props["LoggingConfiguration"]
    assert kms_buckets == 2
    t.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_every_bucket_denies_plain_http(templates):
    t = templates["storage"]
    policies = _resources(t, "AWS::S3::BucketPolicy")
    assert len(policies) == 3
    for res in policies.values():
        statements = res["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
                   for s in statements)


def test_lifecycle_and_eventbridge(templates):
    t = templates["storage"]
    t.has_resource_properties("AWS::S3::Bucket", {
        "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({
            "ExpirationInDays": 365,
            "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}],
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        })])}})
    t.has_resource_properties("AWS::S3::Bucket", {
        "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}})
    # no custom-resource Lambda for notifications
    assert not _resources(t, "Custom::S3BucketNotifications")


def test_destroy_data_context_switches_removal_policy(tmp_path):
    from app import cdk_json_context
    from s2s_infra.config import InfraConfig
    from s2s_infra.storage_stack import StorageStack

    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=str(tmp_path), context=cdk_json_context())  # feature flags of cdk.json
    stack = StorageStack(app, "S", config=InfraConfig(destroy_data=True))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    template = Template.from_stack(stack)
    buckets = template.find_resources("AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in buckets.values()} == {"Delete"}
    # `cdk destroy` can delete them: each bucket is emptied first (CloudFormation refuses non-empty ones)
    emptied = template.find_resources("Custom::S3AutoDeleteObjects")
    assert sorted(r["Properties"]["BucketName"]["Ref"] for r in emptied.values()) == sorted(buckets)
    app.synth()   # cdk-nag finds nothing to report on the bucket-emptying Lambda either


def test_kept_data_is_never_emptied(templates):
    storage = next(t for name, t in templates.items() if "torage" in name)
    assert not storage.find_resources("Custom::S3AutoDeleteObjects")
    assert {b["DeletionPolicy"] for b in storage.find_resources("AWS::S3::Bucket").values()} == {"Retain"}


def test_bad_context_is_rejected_with_the_key_to_fix():
    from s2s_infra.config import InfraConfig

    with pytest.raises(ValueError, match="schedule"):
        InfraConfig(schedule="every day").validate()
    with pytest.raises(ValueError, match="env_name"):
        InfraConfig(env_name="Prod_1").validate()



def test_pipeline_context_keys_are_the_declared_pipeline_settings():
    """The pipeline settings of the context are declared once (PipelineConfig), with their defaults."""
    import dataclasses

    from s2s_aws.pipeline import SETTINGS
    from s2s_infra.config import InfraConfig

    infra = {f.name: f for f in dataclasses.fields(InfraConfig)}
    declared = [s for s in SETTINGS if s.context]
    assert {s.name for s in declared} == {"source_lang", "target_lang", "processing_instance_type",
                                          "training_instance_type", "endpoint_instance_type", "use_spot",
                                          "min_bleu", "cache_expire_after", "approval_status"}
    for s in declared:
        assert (infra[s.name].type, infra[s.name].default) == (s.type, s.default), s.name
    # the names the stacks fix: the settings' defaults, not a second copy
    defaults = {s.name: s.default for s in SETTINGS}
    assert (InfraConfig().raw_prefix, InfraConfig().artifacts_prefix) == (defaults["raw_prefix"],
                                                                          defaults["artifacts_prefix"])


def test_context_reaches_the_pipeline_definition():
    from s2s_infra.config import InfraConfig
    from s2s_infra.pipeline_stack import build_pipeline_definition

    app = cdk.App(context={"min_bleu": "21.5", "source_lang": "de", "use_spot": "true",
                           "cache_expire_after": "P1D", "training_instance_type": "ml.p3.2xlarge"})
    config = InfraConfig.from_node(app.node)
    assert (config.min_bleu, config.use_spot) == (21.5, True)
    definition = json.loads(build_pipeline_definition(config))
    params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert (params["MinBleu"], params["SourceLang"], params["TrainingInstanceType"]) == (21.5, "de", "ml.p3.2xlarge")
    assert "MaxWaitSeconds" in params                       # spot
    assert {s["CacheConfig"]["ExpireAfter"] for s in definition["Steps"] if "CacheConfig" in s} == {"P1D"}


def test_every_cdk_json_context_key_is_a_setting():
    import dataclasses

    from s2s_infra.config import InfraConfig

    context = json.loads((INFRA / "cdk.json").read_text())["context"]
    known = {f.name for f in dataclasses.fields(InfraConfig)}
    assert {k for k in context if not k.startswith("@")} - known == set()


# --------------------------------------------------------------------------------------- image
def test_ecr_repository(templates):
    t = templates["image"]
    t.has_resource_properties("AWS::ECR::Repository", {
        "ImageScanningConfiguration": {"ScanOnPush": True},
        "ImageTagMutability": "IMMUTABLE",
    })
    repo = next(iter(_resources(t, "AWS::ECR::Repository").values()))
    rules = json.loads(repo["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert rules[0]["selection"]["countType"] == "imageCountMoreThan"
    assert rules[0]["selection"]["countNumber"] == 10


def test_image_asset_is_staged_not_built(synth):
    _, outdir, error, _ = synth
    assert error is None
    assets = json.loads((outdir / "s2s-dev-image.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["dockerFile"] == "Dockerfile"
    assert (outdir / image["source"]["directory"] / "Dockerfile").is_file()


# --------------------------------------------------------------------------------------- roles
def test_no_star_resource_except_acknowledged_actions(templates):
    seen_star = set()
    for name, t in templates.items():
        for logical, st in iam_statements(t.to_json()):
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert not any(a.endswith(":*") or a == "*" for a in actions), (name, logical, actions)
            if "*" in resources:
                assert set(actions) <= WILDCARD_ONLY, (name, logical, actions)
                seen_star |= set(actions)
    assert seen_star == WILDCARD_ONLY


def test_pass_role_is_conditioned_on_sagemaker(templates):
    n = 0
    for _, st in iam_statements(templates["roles"].to_json()):
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if "iam:PassRole" in actions:
            n += 1
            assert st["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert n == 2  # pipeline role and deploy function role


def test_roles_and_trust(templates):
    t = templates["roles"]
    principals = sorted(r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
                        for r in _resources(t, "AWS::IAM::Role").values())
    assert principals == ["events.amazonaws.com", "lambda.amazonaws.com", "sagemaker.amazonaws.com",
                          "sagemaker.amazonaws.com"]
    assert not any(r["Properties"].get("ManagedPolicyArns") for r in _resources(t, "AWS::IAM::Role").values())
    text = json.dumps(t.to_json())
    assert "log-group:/aws/sagemaker/*" in text
    assert "pipeline/s2s-dev-pipeline" in text


# ------------------------------------------------------------------------------------ pipeline
def _definition_body(templates) -> tuple[str, dict]:
    (res,) = _resources(templates["pipeline"], "AWS::SageMaker::Pipeline").values()
    body = res["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    text, variables = body["Fn::Sub"]
    return text, variables


def test_pipeline_resource_and_definition(templates):
    t = templates["pipeline"]
    t.has_resource_properties("AWS::SageMaker::Pipeline", {"PipelineName": "s2s-dev-pipeline"})
    text, variables = _definition_body(templates)
    assert set(variables) == {"ExecutionRoleName", "ImageUri", "DataBucket", "ArtifactsBucket",
                              "DeployFunctionArn", "KmsKeyArn"}
    placeholders = set(re.findall(r"\$\{([^}]*)\}", text))
    assert placeholders - set(variables) <= {"AWS::Partition", "AWS::AccountId"}
    definition = json.loads(text)
    assert [s["Name"] for s in definition["Steps"]] == ["Preprocess", "Train", "Evaluate", "CheckBleu"]
    t.has_resource_properties("AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "s2s-dev-models"})
    t.has_resource_properties("AWS::Lambda::Function", {
        "FunctionName": "s2s-dev-register-deploy", "Runtime": "python3.14", "Handler": "index.handler"})


def test_triggers_start_the_pipeline_with_a_dlq(templates):
    t = templates["pipeline"]
    rules = _resources(t, "AWS::Events::Rule")
    assert len(rules) == 2
    kinds = set()
    for res in rules.values():
        props = res["Properties"]
        (target,) = props["Targets"]
        assert "pipeline/s2s-dev-pipeline" in json.dumps(target["Arn"])
        assert "RoleArn" in target and "Arn" in target["DeadLetterConfig"]
        params = target["SageMakerPipelineParameters"]["PipelineParameterList"]
        assert [p["Name"] for p in params] == ["DataVersion"]
        if "ScheduleExpression" in props:
            kinds.add("schedule")
            assert props["ScheduleExpression"] == "rate(7 days)"
        else:
            kinds.add("s3")
            pattern = props["EventPattern"]
            assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
            assert pattern["detail"]["object"]["key"] == [{"prefix": "raw/"}]
    assert kinds == {"schedule", "s3"}
    t.has_resource_properties("AWS::SQS::QueuePolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Action": "sqs:SendMessage", "Principal": {"Service": "events.amazonaws.com"}})])}})


# ------------------------------------------------------------------------------------ cfn-lint
def test_cfn_lint_clean(synth):
    _, outdir, error, _ = synth
    assert error is None
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    if not cfn_lint.exists():
        pytest.fail(f"cfn-lint not found next to {sys.executable}; install the dev extra")
    files = sorted(str(p) for p in outdir.glob("*.template.json"))
    assert len(files) == 4
    proc = subprocess.run([str(cfn_lint), "--format", "parseable", *files], capture_output=True, text=True,
                          timeout=300)
    # exit code bits: 2 = errors, 4 = warnings, 8 = informational; errors fail the test
    assert proc.returncode & 2 == 0, proc.stdout + proc.stderr
    assert ":E" not in proc.stdout, proc.stdout


# -------------------------------------------------------------------------------- npx cdk synth
@pytest.mark.slow
@pytest.mark.skipif(not (INFRA / "node_modules" / ".bin" / "cdk").exists(),
                    reason="infra/node_modules not installed (scripts/setup.sh runs npm ci)")
def test_npx_cdk_synth_without_running_docker(tmp_path):
    """The CLI path (cdk.json app) synthesizes offline; the image asset does not run Docker."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    marker = tmp_path / "docker-was-called"
    fake_docker = fake_bin / "docker"
    fake_docker.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    fake_docker.chmod(0o755)
    ctx = _docker_context(tmp_path)
    env = dict(os.environ, PATH=f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
               JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_VERSION_CHECK="1")
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(INFRA / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "--no-notices", "-o", str(out),
         "-c", f"docker_directory={ctx}", "-c", "dockerfile=Dockerfile", "-c", "nag=false"],
        cwd=INFRA, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(list(out.glob("*.template.json"))) == 4
    assert not marker.exists(), "cdk synth ran docker"
