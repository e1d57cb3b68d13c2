"""Training under faults (issue #9): ``s2s-train`` SIGKILLed at a random point after its first
checkpoint, then started again on the same ``/opt/ml`` tree (what managed spot training does).

Promises checked: the restart resumes from the last checkpoint (it says so and at which step); at
most one checkpoint interval of work is lost; the final model equals the one of an uninterrupted
run with the same seed (resume restores model, optimizer, scheduler, data position and RNG).
"""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from algo_utils import REPO, reverse_pairs, run_train, write_ml_tree

pytestmark = pytest.mark.slow

FREQ = 15
HP = {
    "num_embed_source": "16", "num_embed_target": "16", "rnn_num_hidden": "32",
    "rnn_attention_num_hidden": "16", "batch_size": "16", "learning_rate": "0.01",
    "checkpoint_frequency_num_batches": str(FREQ), "max_num_batches": "150", "max_seq_len_source": "10",
    "max_seq_len_target": "10", "checkpoint_threshold": "100", "seed": "11", "bleu_sample_size": "0",
}
STEP_RE = re.compile(r"checkpoint \d+ at step (\d+)")
RESUME_RE = re.compile(r"resuming from checkpoint .*?: step (\d+)")


def _tree(root: Path) -> Path:
    return write_ml_tree(root, HP, train=reverse_pairs(600, 5), validation=reverse_pairs(40, 6))


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"S2S_ML_ROOT": str(root), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    return env


def _state_dict(model_dir: Path):
    import torch

    return torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    root = _tree(tmp_path_factory.mktemp("uninterrupted"))
    proc = run_train(root)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return root


def test_sigkill_after_a_checkpoint_then_restart_resumes_and_matches(tmp_path, reference):
    root = _tree(tmp_path / "ml")
    state = root / "checkpoints" / "training_state.pt"
    code = "import sys; from s2s_algorithm.train import main; sys.exit(main())"
    out_path = tmp_path / "killed.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], env=_env(root), cwd=str(REPO), stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            # a random point: just after a randomly chosen one of the first checkpoints, so that at
            # least 6 checkpoint intervals of training are still ahead whatever the machine's speed
            rng = random.Random(os.getpid())
            target = rng.randint(1, 4)
            deadline = time.monotonic() + 240
            while not (state.exists() and len(STEP_RE.findall(out_path.read_text())) >= target):
                assert proc.poll() is None, out_path.read_text()[-3000:]
                assert time.monotonic() < deadline, f"no checkpoint {target} within 240 s"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.05))
            proc.kill()
        finally:
            proc.kill()
            proc.wait(30)
    killed_log = out_path.read_text()
    assert proc.returncode == -9
    assert not (root / "model" / "model.pt").exists(), "killed before the end: no final model yet"
    printed = [int(s) for s in STEP_RE.findall(killed_log)]

    again = run_train(root)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    resumed = RESUME_RE.search(again.stdout)
    assert resumed, "the restart did not resume:\n" + again.stdout[:2000]
    step = int(resumed.group(1))
    assert step > 0 and step % FREQ == 0
    # nothing before the last checkpoint the killed run reported is redone, and a checkpoint comes
    # every FREQ updates, so at most one interval of work was lost
    assert not printed or step >= max(printed)
    assert step <= (max(printed) if printed else step) + FREQ

    import torch

    ref, got = _state_dict(reference / "model"), _state_dict(root / "model")
    assert ref.keys() == got.keys()
    for name in ref:
        assert torch.allclose(ref[name], got[name], rtol=1e-4, atol=1e-5), name


def test_damaged_checkpoint_starts_over_instead_of_failing(tmp_path):
    """A checkpoint cut short (a crash mid-write without the atomic rename) does not end the job."""
    root = _tree(tmp_path / "ml")
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "training_state.pt").write_bytes(b"PK\x03\x04 half a zip file")
    proc = run_train(root)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "starting from scratch" in proc.stdout + proc.stderr
    assert (root / "model" / "model.pt").is_file()


def _failure_text(root: Path) -> str:
    path = root / "output" / "failure"
    assert path.is_file(), "no failure file"
    text = path.read_text()
    assert text.count("\n") == 1, "the failure must be one paragraph"
    return text


# ---------------------------------------------------------------- resourceconfig (issue #19 item 5)
BAD_RESOURCECONFIGS = {
    "current host not in hosts": ({"current_host": "algo-3", "hosts": ["algo-1", "algo-2"]}, "algo-3"),
    "hosts a string": ({"current_host": "algo-1", "hosts": "algo-1"}, "list"),
    "hosts holds a number": ({"current_host": "algo-1", "hosts": ["algo-1", 2]}, "hosts"),
    "hosts empty": ({"current_host": "algo-1", "hosts": []}, "hosts"),
    "hosts repeated": ({"current_host": "algo-1", "hosts": ["algo-1", "algo-1"]}, "algo-1"),
    "current host a list": ({"current_host": ["algo-1"], "hosts": ["algo-1"]}, "current_host"),
    "current host empty": ({"current_host": "", "hosts": ["algo-1"]}, "current_host"),
}


@pytest.mark.parametrize("case", sorted(BAD_RESOURCECONFIGS))
def test_bad_resourceconfig_is_an_input_error(case):
    from s2s_algorithm import distributed

    from s2s_aws.errors import InputError

    config, named = BAD_RESOURCECONFIGS[case]
    with pytest.raises(InputError) as info:
        distributed.plan_world(config)
    text = str(info.value)
    assert "resourceconfig" in text and named in text, text


def test_good_resourceconfigs_plan_the_world():
    from s2s_algorithm import distributed

    plan = distributed.plan_world({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"],
                                   "network_interface_name": "eth0"})
    assert plan.hosts == ["algo-1", "algo-2"] and plan.host_rank == 1
    assert distributed.plan_world(None).hosts == ["localhost"]
    assert distributed.plan_world({"current_host": "algo-1"}).hosts == ["algo-1"]


def test_bad_resourceconfig_fails_the_job_at_once_with_exit_2(tmp_path):
    """It waited for the 2 h rendezvous timeout."""
    import json

    root = _tree(tmp_path / "ml")
    (root / "input" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-2", "hosts": ["algo-1"]}))
    proc = run_train(root, timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    text = _failure_text(root)
    assert "resourceconfig" in text and "algo-2" in text and "algo-1" in text, text
