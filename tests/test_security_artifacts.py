"""Model artifacts and checkpoints are data, never code: a pickle payload in either is refused.

Anyone who can write the model artifact or the checkpoint prefix in S3 must not be able to run code in
the container. Every ``.pt`` file is read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from algo_utils import run_train, train_tiny_model, write_ml_tree
from s2s_algorithm import checkpoint
from s2s_algorithm.translator import load_translator

QUICK = {"max_num_batches": "6", "checkpoint_frequency_num_batches": "3", "batch_size": "16",
         "num_embed_source": "16", "num_embed_target": "16", "rnn_num_hidden": "16"}


class _Payload:
    """Unpickling this runs ``os.system`` -- what an attacker would put into a ``.pt`` file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _poison(path: Path, marker: Path, wrap=lambda payload: payload) -> None:
    torch.save(wrap(_Payload(marker)), path)


def test_a_model_file_with_a_pickle_payload_is_refused_and_runs_nothing(tmp_path):
    model_dir = train_tiny_model(tmp_path / "train")
    marker = tmp_path / "pwned"
    good = torch.load(model_dir / "model.pt", weights_only=True)
    _poison(model_dir / "model.pt", marker, wrap=lambda p: {**good, "extra": p})
    with pytest.raises(checkpoint.UnsafeFileError, match="could run code"):
        load_translator(model_dir, device="cpu")
    assert not marker.exists()


def test_a_model_file_that_is_not_a_state_dict_is_refused(tmp_path):
    model_dir = train_tiny_model(tmp_path / "train")
    torch.save([torch.zeros(2)], model_dir / "model.pt")
    with pytest.raises(checkpoint.UnsafeFileError, match="not a model state dict"):
        load_translator(model_dir, device="cpu")


def test_a_checkpoint_with_a_pickle_payload_is_refused_and_the_job_starts_over(tmp_path):
    root = write_ml_tree(tmp_path / "ml", QUICK)
    (root / "checkpoints").mkdir(parents=True)
    marker = tmp_path / "pwned"
    _poison(root / "checkpoints" / checkpoint.TRAINING_STATE, marker,
            wrap=lambda p: {"header": dict(checkpoint.TRAINING_STATE_HEADER), "state": p})
    proc = run_train(root)
    out = proc.stdout + proc.stderr
    assert not marker.exists(), "unpickling the checkpoint ran code"
    assert proc.returncode == 0, out[-2000:]
    assert "refusing checkpoint" in out and "starting from scratch" in out.lower()
    # the run wrote a clean state over the poisoned one, and it is readable without unpickling code
    state = checkpoint.load_training_state(root / "checkpoints" / checkpoint.TRAINING_STATE)
    assert state["state"]["step"] == 6


def test_a_best_model_file_with_a_payload_fails_the_job_clearly(tmp_path):
    # best_model.pt is read when the model directory is written at the end of training
    root = write_ml_tree(tmp_path / "ml", {**QUICK, "max_num_batches": "3"})
    first = run_train(root)
    assert first.returncode == 0, first.stderr[-2000:]
    marker = tmp_path / "pwned"
    _poison(root / "checkpoints" / checkpoint.BEST_MODEL, marker)
    shutil.rmtree(root / "model")
    (root / "model").mkdir()
    second = run_train(root)   # resumes at step 3 = max_num_batches, then writes the model from best_model.pt
    assert not marker.exists()
    assert second.returncode != 0
    failure = (root / "output" / "failure").read_text()
    assert "could run code" in failure and checkpoint.BEST_MODEL in failure


def test_training_state_is_plain_tensors_and_values_and_restores_the_rngs(tmp_path):
    import random

    import numpy as np

    random.seed(5)
    np.random.seed(6)
    torch.manual_seed(7)
    np.random.standard_normal()          # leaves a cached gaussian in numpy's legacy state
    saved = checkpoint.rng_state(cuda=False)
    path = tmp_path / checkpoint.TRAINING_STATE
    checkpoint.save_training_state({"rng": saved, "state": {"step": 3}}, path)
    expected = (random.random(), np.random.standard_normal(), torch.rand(1).item())
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    loaded = torch.load(path, weights_only=True)   # plain tensors and values only
    checkpoint.set_rng_state(loaded["rng"])
    assert (random.random(), np.random.standard_normal(), torch.rand(1).item()) == expected


def test_a_training_state_without_the_header_is_not_read(tmp_path):
    path = tmp_path / checkpoint.TRAINING_STATE
    torch.save({"state": {"step": 1}}, path)
    with pytest.raises(checkpoint.InputError, match="no header"):
        checkpoint.load_training_state(path)
