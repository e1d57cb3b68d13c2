"""Local mode under faults (issue #9): the owner of the stack dies abruptly.

- No orphans: the train/serve programs a stack started die with it, even when the owner is
  SIGKILLed (they run under :mod:`s2s_aws.local.child`, which watches the owner).
- Crash of ``s2s-aws local up`` while a job runs and an endpoint serves: every program it started is
  gone within a bounded time; after a restart the job is Failed with a reason (never stuck
  InProgress) and the endpoint serves again.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import pytest

from local_utils import model_endpoint_and_running_job

from s2s_aws.local import support

pytestmark = pytest.mark.slow

PY = sys.executable
GONE_WITHIN_S = 30.0


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _wait_gone(pids: list[int], timeout: float = GONE_WITHIN_S) -> list[int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def _kill_all(pids: list[int]) -> None:
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ----------------------------------------------------------------------- the launcher itself
def test_start_process_passes_output_and_exit_status():
    proc = support.start_process([PY, "-c", "print('hello from the program'); raise SystemExit(3)"],
                                 support.child_env())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert "hello from the program" in out


def test_terminate_reaches_the_program_and_reports_its_signal():
    proc = support.start_process([PY, "-c", "import time; print('up', flush=True); time.sleep(600)"],
                                 support.child_env())
    assert proc.stdout.readline().strip() == "up"
    assert support.terminate(proc, grace_s=10) == -signal.SIGTERM
    assert _descendants(proc.pid) == []


def test_program_that_cannot_start_fails_with_a_message():
    proc = support.start_process(["/no/such/program"], support.child_env())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 127
    assert "cannot start '/no/such/program'" in out


OWNER = textwrap.dedent("""
    import sys, threading, time
    from s2s_aws.local import support
    def start():  # from a short-lived worker thread, as the control plane does
        proc = support.start_process([sys.executable, "-c",
            "import os, time; print(os.getpid(), flush=True); time.sleep(600)"], support.child_env())
        print(proc.pid, proc.stdout.readline().strip(), flush=True)
    t = threading.Thread(target=start); t.start(); t.join()
    time.sleep(600)
""")


def test_programs_die_when_their_owner_is_sigkilled():
    owner = subprocess.Popen([PY, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        launcher, program = map(int, owner.stdout.readline().split())
        assert _alive(launcher) and _alive(program)
        time.sleep(0.5)  # the worker thread that forked has exited: the program must stay up
        assert _alive(program)
        owner.kill()
        owner.wait(10)
        left = _wait_gone([launcher, program])
        assert left == [], f"still running {GONE_WITHIN_S:g} s after the owner died: {left}"
    finally:
        owner.kill()
        _kill_all([p for p in locals().get("left", []) or []])


# --------------------------------------------------------------- `s2s-aws local up` crashing
def _start_local_up(state_dir: Path):
    env = dict(os.environ)
    env["S2S_LOCAL_TRAIN_COMMAND"] = f"{PY} {Path(__file__).with_name('fake_algorithm.py')} train"
    env["S2S_LOCAL_SERVE_COMMAND"] = (f"{PY} {Path(__file__).with_name('fake_algorithm.py')} serve --model-dir {{model_dir}} "
                                      "--port {port}")
    proc = subprocess.Popen([PY, "-m", "s2s_aws", "--json", "local", "up", "--state-dir", str(state_dir)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError("local up printed nothing")
    return proc, json.loads(line)


def _clients(info):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    url = info["endpoint_url"]
    return (session.client("s3", endpoint_url=url), session.client("sagemaker", endpoint_url=url),
            session.client("sagemaker-runtime", endpoint_url=url))


def test_sigkill_of_local_up_leaves_no_programs_and_restart_fails_the_job(tmp_path):
    state = tmp_path / "state"
    proc, info = _start_local_up(state)
    programs: list[int] = []
    try:
        s3, sm, rt = _clients(info)
        model_endpoint_and_running_job(s3, sm, "crash-bucket", version="7")
        # a launcher and its program for the endpoint and for the job (the job's program may start a
        # moment after its SecondaryStatus says Training)
        deadline = time.time() + 30
        while len(programs := _descendants(proc.pid)) < 4 and time.time() < deadline:
            time.sleep(0.1)
        assert len(programs) >= 4, programs
        proc.kill()  # SIGKILL: no handler runs in local up
        proc.wait(10)
        left = _wait_gone(programs)
        assert left == [], f"programs still running {GONE_WITHIN_S:g} s after local up was killed: {left}"
    finally:
        proc.kill()
        _kill_all(programs)

    proc, info = _start_local_up(state)
    try:
        _, sm, rt = _clients(info)
        d = sm.describe_training_job(TrainingJobName="running-job")
        assert d["TrainingJobStatus"] == "Failed"
        assert "restarted while the job ran" in d["FailureReason"]
        assert sm.describe_training_job(TrainingJobName="model-job")["TrainingJobStatus"] == "Completed"
        # the endpoint is resumed: S3 writes are saved before they are acknowledged, so the model
        # artifact survived the crash and the endpoint comes back InService
        deadline = time.time() + 120
        while (status := sm.describe_endpoint(EndpointName="ep"))["EndpointStatus"] not in ("InService", "Failed"):
            assert time.time() < deadline, f"endpoint stuck in {status['EndpointStatus']} after the restart"
            time.sleep(0.5)
        assert status["EndpointStatus"] == "InService", status.get("FailureReason")
        r = rt.invoke_endpoint(EndpointName="ep", ContentType="application/json",
                               Body=json.dumps({"instances": [{"data": "x y"}]}))
        assert json.loads(r["Body"].read())["predictions"][0] == {"target": "y x", "model": "7"}
    finally:
        children = _descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            proc.kill()
        assert _wait_gone(children) == []


def test_s3_objects_survive_a_crash_of_local_up(tmp_path):
    state = tmp_path / "state"
    proc, info = _start_local_up(state)
    try:
        s3, _, _ = _clients(info)
        s3.create_bucket(Bucket="durable")
        s3.put_object(Bucket="durable", Key="k", Body=b"payload")  # acknowledged = saved: no wait
    finally:
        proc.kill()
        proc.wait(10)
    proc, info = _start_local_up(state)
    try:
        s3, _, _ = _clients(info)
        assert s3.get_object(Bucket="durable", Key="k")["Body"].read() == b"payload"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def test_the_fake_algorithm_is_test_code_not_part_of_the_package() -> None:
    """The torch-free stand-in lives in tests/; s2s_aws ships no test programs (quickstart runs the real one)."""
    import s2s_aws.local

    assert not (Path(s2s_aws.local.__file__).parent / "fake_algorithm.py").exists()
    assert (Path(__file__).with_name("fake_algorithm.py")).is_file()
