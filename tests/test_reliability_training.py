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


# ---------------------------------------------------------------- divergence (issue #19 item 4)
def _failure_text(root: Path) -> str:
    path = root / "output" / "failure"
    assert path.is_file(), "no failure file"
    text = path.read_text()
    assert text.count("\n") == 1, "the failure must be one paragraph"
    return text


def test_non_finite_loss_fails_the_job_with_the_step_and_what_to_try(tmp_path):
    """learning_rate=1e300 made every parameter NaN and the job still exited 0."""
    import torch

    root = write_ml_tree(tmp_path / "ml", {**HP, "learning_rate": "1e300"}, train=reverse_pairs(600, 5),
                         validation=reverse_pairs(40, 6))
    proc = run_train(root, timeout=240)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    text = _failure_text(root)
    found = re.search(r"NaN or infinite at step (\d+)", text)
    assert found, text
    for hint in ("learning_rate", "clip_gradient", "mixed_precision"):
        assert hint in text, text
    step = int(found.group(1))
    assert 1 <= step <= 150
    assert "loss nan" not in proc.stdout.lower() and "loss inf" not in proc.stdout.lower()
    assert not (root / "model" / "model.pt").exists(), "a diverged model was delivered"
    for name in ("training_state.pt", "best_model.pt"):  # a checkpoint, if any, is from before it diverged
        path = root / "checkpoints" / name
        if path.exists():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            tensors = saved["model"] if name == "training_state.pt" else saved
            assert all(torch.isfinite(t).all() for t in tensors.values()), name


def test_non_finite_loss_on_two_processes_fails_both_together(tmp_path):
    """With DistributedDataParallel every rank stops at the same check (no rank left waiting)."""
    root = write_ml_tree(tmp_path / "ml", {**HP, "learning_rate": "1e300", "max_num_batches": "30"},
                         train=reverse_pairs(600, 5), validation=reverse_pairs(40, 6))
    proc = run_train(root, timeout=240, extra_env={"S2S_PROCESSES_PER_HOST": "2"})
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "rank 1 of 2" in proc.stdout
    assert re.search(r"NaN or infinite at step \d+", _failure_text(root))
    assert not (root / "model" / "model.pt").exists()


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


# ---------------------------------------------------------------- checkpoints that do not fit the model
@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    root = write_ml_tree(tmp_path_factory.mktemp("short"), {**HP, "max_num_batches": str(FREQ)},
                         train=reverse_pairs(600, 5), validation=reverse_pairs(40, 6))
    proc = run_train(root)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return root


def _damage(state: dict, how: str) -> None:
    import torch

    model = state["model"]
    first = sorted(model)[0]
    if how == "renamed key":
        model["encoder.not_a_parameter"] = model.pop(first)
    elif how == "missing key":
        del model[first]
    elif how == "wrong shape":
        model[first] = torch.zeros(*[d + 1 for d in model[first].shape])
    elif how == "optimizer of another model":
        state["optimizer"]["param_groups"][0]["params"] = state["optimizer"]["param_groups"][0]["params"][:-1]
    elif how == "optimizer state of another shape":
        slot = next(iter(state["optimizer"]["state"].values()))
        for name, value in slot.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                slot[name] = torch.zeros(value.numel() + 3)
    elif how == "counters of another version":
        state["state"]["not_a_counter"] = 1
    elif how == "no optimizer":
        del state["optimizer"]
    else:  # pragma: no cover
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["renamed key", "missing key", "wrong shape", "optimizer of another model",
                                 "optimizer state of another shape", "counters of another version", "no optimizer"])
def test_checkpoint_that_does_not_fit_the_model_starts_over(tmp_path, short_run, how):
    """RELIABILITY.md says damaged checkpoints start over; a wrong state-dict key failed the job."""
    import json
    import shutil

    import torch

    root = tmp_path / "ml"
    shutil.copytree(short_run, root, ignore=shutil.ignore_patterns("model", "output"))
    path = root / "checkpoints" / "training_state.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)
    _damage(state, how)
    torch.save(state, path)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps({**HP, "max_num_batches": "20"}))
    proc = run_train(root)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "resuming from checkpoint" not in out
    assert "does not fit this model" in out and "starting from scratch" in out, out[-3000:]
    assert "training finished at step 20" in out
    assert (root / "model" / "model.pt").is_file()
