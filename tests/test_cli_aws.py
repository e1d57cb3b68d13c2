"""The ``s2s-aws`` AWS commands end to end against moto: exit codes and --json output."""
from __future__ import annotations

import io
import json
import sys
import types

import pytest
from botocore.stub import Stubber
from test_sdk_support import BUCKET, IMAGE, PREFIX, ROLE, aws, make_prep, make_session, training_description  # noqa: F401

from s2s_aws.cli import main


@pytest.fixture
def env(aws, monkeypatch):
    monkeypatch.setenv("S2S_BUCKET", BUCKET)
    monkeypatch.setenv("S2S_PREFIX", PREFIX)
    monkeypatch.setenv("S2S_ROLE_ARN", ROLE)
    monkeypatch.setenv("S2S_IMAGE_URI", IMAGE)
    monkeypatch.setenv("S2S_RUN_ID", "cli-run")
    return aws


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    rc = main(["--json", *argv])
    out = capsys.readouterr().out.strip().splitlines()
    return rc, json.loads(out[-1]) if out else {}


def use_session(monkeypatch, sess) -> None:
    """Make every CLI command use ``sess`` (to plug in Stubber / fake clients)."""
    monkeypatch.setattr("s2s_aws.cli.aws._session", lambda args: sess)


def test_upload_then_skip_unchanged(env, tmp_path, capsys) -> None:
    prep = make_prep(tmp_path / "prep")
    rc, out = run_json(capsys, "upload", str(prep))
    assert rc == 0 and out["ok"] is True
    assert out["channels"]["vocab"] == f"s3://{BUCKET}/{PREFIX}/vocab/" and len(out["uploaded"]) == 4
    rc, out = run_json(capsys, "upload", str(prep), "--region", "us-east-1")
    assert rc == 0 and out["uploaded"] == [] and len(out["skipped"]) == 4


def test_upload_malformed_file_exits_2_and_uploads_nothing(env, tmp_path, capsys) -> None:
    prep = make_prep(tmp_path / "prep")
    (prep / "vocab.src.json").write_text("[1, 2]")
    rc = main(["upload", str(prep)])
    err = capsys.readouterr().err
    assert rc == 2 and "vocab.src.json" in err
    assert "Contents" not in env.client("s3").list_objects_v2(Bucket=BUCKET)


def test_missing_bucket_exits_2(aws, tmp_path, capsys) -> None:
    rc = main(["upload", str(make_prep(tmp_path / "p"))])
    assert rc == 2 and "S2S_BUCKET" in capsys.readouterr().err


def test_train_wait_status_deploy_cleanup_journey(env, tmp_path, capsys) -> None:
    prep = make_prep(tmp_path / "prep")
    rc, out = run_json(capsys, "train", "--data", str(prep), "--hp", "rnn_num_hidden=64", "--hp", "batch_size=8",
                       "--instance-type", "ml.m5.xlarge", "--wait")
    assert rc == 0 and out["status"] == "Completed" and out["run_id"] == "cli-run"
    name = out["job_name"]
    hps = env.client("sagemaker").describe_training_job(TrainingJobName=name)["HyperParameters"]
    assert hps == {"rnn_num_hidden": "64", "batch_size": "8"}

    rc, out = run_json(capsys, "status", name)
    assert rc == 0 and out["status"] == "Completed" and out["model_artifacts"].endswith("model.tar.gz")

    rc, out = run_json(capsys, "deploy", "--job", name, "--endpoint-name", "cli-ep")
    assert rc == 0 and out["endpoint_name"] == "cli-ep" and out["status"] == "InService"

    rc, out = run_json(capsys, "cleanup", "--dry-run")
    assert rc == 0 and out["dry_run"] is True
    assert sorted(r["kind"] for r in out["resources"]) == ["endpoint", "endpoint-config", "model"]
    assert env.client("sagemaker").list_endpoints()["Endpoints"]

    rc, out = run_json(capsys, "cleanup", "--run-id", "cli-run")
    assert rc == 0 and all(r["done"] for r in out["resources"])
    assert env.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_bad_hyperparameter_and_bad_flag_exit_2(env, capsys) -> None:
    assert main(["train", "--hp", "rnn_num_hidden=lots"]) == 2
    assert "rnn_num_hidden" in capsys.readouterr().err
    assert main(["train", "--hp", "no-equals-sign"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert env.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_status_of_unknown_job_exits_2(env, capsys) -> None:
    rc, out = run_json(capsys, "status", "no-such-job")
    assert rc == 2 and out["ok"] is False and "not found" in out["error"]


def test_failed_job_exits_1_with_reason_in_json(env, monkeypatch, capsys) -> None:
    sess = make_session(env)
    stub = Stubber(sess.sagemaker)
    stub.add_response("describe_training_job", training_description("bad-job", "Failed", reason="CUDA out of memory"),
                      {"TrainingJobName": "bad-job"})
    stub.add_response("describe_training_job", training_description("bad-job", "Failed", reason="CUDA out of memory"),
                      {"TrainingJobName": "bad-job"})
    stub.activate()
    use_session(monkeypatch, sess)
    rc, out = run_json(capsys, "status", "bad-job", "--wait")
    assert rc == 1 and out["ok"] is False
    assert out["status"] == "Failed" and out["reason"] == "CUDA out of memory" and "cloudwatch" in out["log_url"]


def test_stop_command(env, monkeypatch, capsys) -> None:
    sess = make_session(env)
    stub = Stubber(sess.sagemaker)
    stub.add_response("describe_training_job", training_description("j", "InProgress"), {"TrainingJobName": "j"})
    stub.add_response("stop_training_job", {}, {"TrainingJobName": "j"})
    stub.add_response("describe_training_job", training_description("j", "Stopping"), {"TrainingJobName": "j"})
    stub.activate()
    use_session(monkeypatch, sess)
    rc, out = run_json(capsys, "stop", "j")
    assert rc == 0 and out == {"ok": True, "job_name": "j", "status": "Stopping"}
    stub.assert_no_pending_responses()


def test_translate_via_endpoint_reads_stdin(env, monkeypatch, capsys) -> None:
    from test_sdk_runtime import FakeRuntime

    sess = make_session(env)
    rt = FakeRuntime()
    sess._clients["sagemaker-runtime"] = rt
    use_session(monkeypatch, sess)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a b c\n\nd e\n"))
    rc = main(["translate", "--endpoint", "ep"])
    assert rc == 0 and capsys.readouterr().out.splitlines() == ["c b a", "e d"]
    rc, out = run_json(capsys, "translate", "--endpoint", "ep", "--attention", "x y")
    assert rc == 0 and out["translations"] == [{"source": "x y", "target": "y x", "matrix": [[0, 1], [1, 0]]}]


def test_translate_attention_plot_from_endpoint(env, monkeypatch, capsys, tmp_path) -> None:
    from test_sdk_runtime import FakeRuntime

    sess = make_session(env)
    sess._clients["sagemaker-runtime"] = FakeRuntime()
    use_session(monkeypatch, sess)
    calls = []
    fake_plot = types.ModuleType("s2s_aws.plot")
    fake_plot.save_attention_heatmap = lambda src, trg, matrix, path: calls.append((src, trg, matrix, path))
    monkeypatch.setitem(sys.modules, "s2s_aws.plot", fake_plot)
    png = str(tmp_path / "att.png")
    assert main(["translate", "--endpoint", "ep", "--attention-plot", png, "p q"]) == 0
    assert calls == [(["p", "q"], ["q", "p"], [[0, 1], [1, 0]], png)]


def test_translate_with_model_dir_calls_local_decoder(env, monkeypatch, capsys, tmp_path) -> None:
    calls = []

    def translate_local(sentences, model_dir, *, beam_size=None, attention_plot=None, json_output=False,
                        progress=None):
        calls.append((sentences, model_dir, beam_size, attention_plot, json_output))
        if progress is not None:
            progress(len(sentences), len(sentences))
        return [{"source": s, "target": s.upper(), **({"matrix": [[1.0]]} if json_output else {})}
                for s in sentences]

    fake = types.ModuleType("s2s_aws.localtranslate")
    fake.translate_local = translate_local
    fake.CHUNK_SENTENCES = 1024
    monkeypatch.setitem(sys.modules, "s2s_aws.localtranslate", fake)
    rc, out = run_json(capsys, "translate", "--model-dir", str(tmp_path), "--beam-size", "3", "hello there")
    assert rc == 0 and out["translations"] == [{"source": "hello there", "target": "HELLO THERE"}]
    assert calls == [(["hello there"], str(tmp_path), 3, None, False)]
    rc, out = run_json(capsys, "translate", "--model-dir", str(tmp_path), "--attention", "hi")
    assert rc == 0 and out["translations"] == [{"source": "hi", "target": "HI", "matrix": [[1.0]]}]
    assert calls[-1] == (["hi"], str(tmp_path), None, None, True)


def test_translate_with_model_dir_reports_progress_on_long_input(env, monkeypatch, capsys, tmp_path) -> None:
    def translate_local(sentences, model_dir, *, beam_size=None, attention_plot=None, json_output=False,
                        progress=None):
        for done in range(2, len(sentences) + 1, 2):
            progress(done, len(sentences))
        return [{"source": s, "target": s[::-1]} for s in sentences]

    fake = types.ModuleType("s2s_aws.localtranslate")
    fake.translate_local = translate_local
    fake.CHUNK_SENTENCES = 2
    monkeypatch.setitem(sys.modules, "s2s_aws.localtranslate", fake)
    assert main(["translate", "--model-dir", str(tmp_path), "ab", "cd", "ef", "gh"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == ["ba", "dc", "fe", "hg"]
    assert "translating: 2/4 sentences" in captured.err and "translating: 4/4 sentences" in captured.err
    # short input, or --json: no progress lines
    assert main(["translate", "--model-dir", str(tmp_path), "ab", "cd"]) == 0
    assert "translating" not in capsys.readouterr().err


def test_translate_needs_exactly_one_target(env, capsys) -> None:
    assert main(["translate", "x"]) == 2
    assert main(["translate", "--endpoint", "e", "--model-dir", "d", "x"]) == 2


def test_update_endpoint_blue_green(env, monkeypatch, capsys) -> None:
    from test_sdk_hosting import MODEL_DATA, UpdatingClient

    sess = make_session(env)
    sess.deploy(MODEL_DATA, endpoint_name="prod")
    fake = UpdatingClient(sess.sagemaker)
    sess._clients["sagemaker"] = fake
    use_session(monkeypatch, sess)
    rc, out = run_json(capsys, "update-endpoint", "prod", "--model-data", MODEL_DATA.replace("job", "v2"),
                       "--blue-green", "LINEAR", "--step-percent", "50", "--rollback-alarm", "errors")
    assert rc == 0 and out["status"] == "InService" and out["endpoint_config"] == fake.updates[0]["EndpointConfigName"]
    deployment = fake.updates[0]["DeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "LINEAR"
    assert deployment["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "errors"}]}


def test_transform_from_local_file(env, tmp_path, capsys) -> None:
    from test_sdk_hosting import MODEL_DATA

    from s2s_aws.hosting import create_model

    model = create_model(make_session(env), MODEL_DATA)
    src = tmp_path / "in.txt"
    src.write_text("can you drive a car ?\n{\"source\": \"i am .\"}\n", encoding="utf-8")
    rc, out = run_json(capsys, "transform", "--model-name", model, "--input", str(src), "--job-name", "cli-tj")
    assert rc == 0 and out["status"] == "Completed" and out["job_name"] == "cli-tj"
    bucket, key = out["input"][5:].split("/", 1)
    body = env.client("s3").get_object(Bucket=bucket, Key=key + "input.jsonl")["Body"].read().decode()
    assert [json.loads(x)["source"] for x in body.splitlines()] == ["can you drive a car ?", "i am ."]


def test_transform_local_file_lines_are_split_like_the_server_splits_them(env, tmp_path, capsys) -> None:
    from test_sdk_hosting import MODEL_DATA

    from s2s_aws.hosting import create_model

    model = create_model(make_session(env), MODEL_DATA)
    src = tmp_path / "in.txt"
    # U+2028 does not end a line (jsonlines records end at "\n" only); a blank line is skipped
    src.write_text("a\u2028b\n\n{\"source\": \"c\\u2028d\"}\n", encoding="utf-8")
    rc, out = run_json(capsys, "transform", "--model-name", model, "--input", str(src), "--job-name", "cli-tj2")
    assert rc == 0
    bucket, key = out["input"][5:].split("/", 1)
    body = env.client("s3").get_object(Bucket=bucket, Key=key + "input.jsonl")["Body"].read().decode()
    assert [json.loads(x)["source"] for x in body.split("\n") if x] == ["a\u2028b", "c\u2028d"]
    # errors name the line of the file, blank lines counted
    bad = tmp_path / "bad.txt"
    bad.write_text("a b\n\n{not json\n", encoding="utf-8")
    assert main(["transform", "--model-name", model, "--input", str(bad)]) == 2
    assert f"{bad}:3:" in capsys.readouterr().err


def test_global_options_work_before_and_after_the_command(env, tmp_path, capsys) -> None:
    prep = make_prep(tmp_path / "prep")
    assert main(["--json", "--region", "us-east-1", "upload", str(prep)]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["upload", str(prep), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_logs_command_prints_lines(env, capsys) -> None:
    import time

    sess = make_session(env)
    from s2s_aws.channels import Channels

    job = sess.train(Channels.from_prefix(BUCKET, PREFIX), {})
    logs = env.client("logs")
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=f"{job.name}/algo-1-1")
    logs.put_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=f"{job.name}/algo-1-1",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "epoch 1 done"}])
    assert main(["logs", job.name]) == 0
    assert capsys.readouterr().out.strip() == "[algo-1] epoch 1 done"
