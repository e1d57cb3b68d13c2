"""The SDK's resource layer: one base for the handles, handles that never import each other,
the session as the one owner of deploy/transform, and the public pieces the CLI uses."""
from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest
from test_sdk_support import aws, make_session, sess, training_description  # noqa: F401

import s2s_aws
from s2s_aws._resource import Resource
from s2s_aws.errors import InputError, TrainingJobFailed
from s2s_aws.hosting import Endpoint
from s2s_aws.session import Session
from s2s_aws.training import TrainingConfig, TrainingJob, log_printer
from s2s_aws.transform import TransformJob

SDK = Path(s2s_aws.__file__).parent
HANDLES = {"training": "s2s_aws.training", "hosting": "s2s_aws.hosting", "transform": "s2s_aws.transform"}


def _runtime_imports(path: Path) -> set[str]:
    """Modules a file imports outside ``if TYPE_CHECKING:`` blocks (relative names resolved in s2s_aws)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = "s2s_aws." + node.module if node.level == 1 and node.module else (node.module or "")
            found.add(base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


@pytest.mark.parametrize("name", sorted(HANDLES))
def test_handles_do_not_import_each_other(name: str) -> None:
    imported = _runtime_imports(SDK / f"{name}.py")
    others = {m for n, m in HANDLES.items() if n != name}
    assert not imported & others, f"{name}.py imports {sorted(imported & others)}; go through the Session"


def test_every_handle_is_a_resource() -> None:
    for cls in (TrainingJob, TransformJob, Endpoint):
        assert issubclass(cls, Resource)
        for own in ("describe", "status", "console_url", "last_description", "__repr__"):
            assert own not in vars(cls), f"{cls.__name__} redefines {own}; the base has it"


def test_sdk_signatures_name_the_session_type() -> None:
    """No ``session: Any`` left: every SDK function taking a session is typed with Session
    (local/ is the local stack, whose ``session`` is a boto3 one)."""
    loose = []
    for path in sorted([*SDK.glob("*.py"), *SDK.glob("cli/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in node.args.args + node.args.kwonlyargs:
                    if arg.arg == "session" and (arg.annotation is None or ast.unparse(arg.annotation) == "Any"):
                        loose.append(f"{path.relative_to(SDK)}:{node.lineno} {node.name}")
    assert not loose, loose


def test_session_methods_have_return_types() -> None:
    for name, fn in vars(Session).items():
        if callable(fn) and not name.startswith("_"):
            assert "return" in fn.__annotations__, f"Session.{name} has no return type"


def test_job_deploy_and_transform_go_through_the_session(sess, monkeypatch) -> None:  # noqa: F811
    calls: list[tuple[str, tuple, dict]] = []
    for method in ("deploy", "create_model", "transform"):
        monkeypatch.setattr(Session, method,
                            lambda self, *a, _m=method, **k: calls.append((_m, a, k)) or f"{_m}-result")
    job = TrainingJob(sess, "seq2seq-20260101-000000-abcd")
    desc = training_description(job.name, "Completed")
    monkeypatch.setattr(TrainingJob, "describe", lambda self: desc)
    assert job.deploy("ml.m5.large") == "deploy-result"
    assert job.transform("s3://b/in/") == "transform-result"
    assert [c[0] for c in calls] == ["deploy", "create_model", "transform"]
    deploy_args, deploy_kwargs = calls[0][1], calls[0][2]
    assert deploy_args == (desc["ModelArtifacts"]["S3ModelArtifacts"],)
    assert deploy_kwargs["instance_type"] == "ml.m5.large" and deploy_kwargs["base_name"] == "seq2seq"
    assert calls[2][1] == ("create_model-result", "s3://b/in/")


def test_check_raises_for_failed_and_stopped(sess) -> None:  # noqa: F811
    job = TrainingJob(sess, "seq2seq-x")
    assert job.check(training_description(job.name, "Completed"))["TrainingJobStatus"] == "Completed"
    with pytest.raises(TrainingJobFailed, match="Failed"):
        job.check(training_description(job.name, "Failed"))
    with pytest.raises(TrainingJobFailed, match="Stopped"):
        job.check(training_description(job.name, "Stopped"))
    assert job.check(training_description(job.name, "Stopped"), allow_stopped=True)


def test_log_printer_names_the_host() -> None:
    out = io.StringIO()
    log_printer(out)("seq2seq-x/algo-1-1700000000", "epoch 1")
    assert out.getvalue() == "[algo-1] epoch 1\n"


def test_not_found_messages_keep_their_wording(sess) -> None:  # noqa: F811
    with pytest.raises(InputError, match=r"training job 'nope' not found in .*; check the name and the region"):
        TrainingJob(sess, "nope").describe()
    with pytest.raises(InputError, match=r"endpoint 'nope' not found in .*; check the name and region, or deploy"):
        Endpoint(sess, "nope").describe()
    with pytest.raises(InputError, match=r"transform job 'nope' not found in \S+$"):
        TransformJob(sess, "nope").describe()


def test_cli_uses_the_sdk_pieces() -> None:
    """The CLI's train defaults and cleanup kinds are the SDK's, and it calls no private job method."""
    import argparse

    from s2s_aws.cleanup import KINDS
    from s2s_aws.cli import aws as cli_aws

    source = Path(cli_aws.__file__).read_text()
    assert "._failure(" not in source and "rsplit(\"-\", 1)" not in source
    parser = argparse.ArgumentParser()
    cli_aws.register(parser.add_subparsers(), [])
    sub = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    train = {a.dest: a.default for a in sub["train"]._actions}
    d = TrainingConfig()
    assert (train["instance_type"], train["instance_count"], train["volume_size"], train["max_runtime"],
            train["base_name"]) == (d.instance_type, d.instance_count, d.volume_size_gb, d.max_runtime_s,
                                    d.base_job_name)
    kind = next(a for a in sub["cleanup"]._actions if a.dest == "kind")
    assert tuple(kind.choices) == KINDS


def test_log_streams_and_tags_follow_every_page(sess) -> None:  # noqa: F811
    """LogTailer and cleanup read every page through botocore's paginators (Stubber: two pages each)."""
    from botocore.stub import Stubber

    from s2s_aws.cleanup import _paginate
    from s2s_aws.training import LOG_GROUP, LogTailer

    logs = sess.client("logs")
    with Stubber(logs) as stub:
        base = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": "j/"}
        stub.add_response("describe_log_streams", {"logStreams": [{"logStreamName": "j/b"}], "nextToken": "t1"}, base)
        stub.add_response("describe_log_streams", {"logStreams": [{"logStreamName": "j/a"}]},
                          {**base, "nextToken": "t1"})
        assert LogTailer(logs, "j")._streams() == ["j/a", "j/b"]
        stub.assert_no_pending_responses()
    with Stubber(logs) as stub:
        stub.add_client_error("describe_log_streams", "ResourceNotFoundException")
        assert LogTailer(logs, "j")._streams() == []
    sm = sess.sagemaker
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model/m"
    with Stubber(sm) as stub:
        stub.add_response("list_tags", {"Tags": [{"Key": "a", "Value": "1"}], "NextToken": "n"}, {"ResourceArn": arn})
        stub.add_response("list_tags", {"Tags": [{"Key": "b", "Value": "2"}]}, {"ResourceArn": arn, "NextToken": "n"})
        assert [t["Key"] for t in _paginate(sm, "list_tags", "Tags", ResourceArn=arn)] == ["a", "b"]
