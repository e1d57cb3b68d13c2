"""Batches, bucketing, schedulers and the /opt/ml paths of the training program."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from s2s_algorithm.data import BatchSampler, ParallelData, make_batch  # noqa: E402
from s2s_algorithm.optim import LRScheduler, build_optimizer  # noqa: E402
from s2s_algorithm.paths import MLPaths  # noqa: E402
from s2s_aws.contract.hyperparameters import Hyperparameters  # noqa: E402


def _data(n: int = 203, seed: int = 0) -> ParallelData:
    rng = np.random.default_rng(seed)
    src = [rng.integers(4, 50, rng.integers(0, 30)).astype(np.int32) for _ in range(n)]
    trg = [rng.integers(4, 50, rng.integers(0, 40)).astype(np.int32) for _ in range(n)]
    return ParallelData(src, trg)


def test_every_pair_once_per_epoch_deterministic_and_reshuffled():
    data = _data()
    sampler = BatchSampler(data, 16, bucket_width=10, seed=7)
    epoch0 = sampler.epoch(0)
    flat = np.concatenate(epoch0)
    assert sorted(flat.tolist()) == list(range(len(data)))
    assert all(len(b) <= 16 for b in epoch0)
    again = BatchSampler(data, 16, bucket_width=10, seed=7).epoch(0)
    assert all(np.array_equal(a, b) for a, b in zip(epoch0, again))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch0, sampler.epoch(1)))


def test_bucketing_groups_similar_target_lengths():
    data = _data()
    lengths = data.target_lengths() + 1
    for batch in BatchSampler(data, 16, bucket_width=10, seed=1).epoch(0):
        buckets = {int(math.ceil(x / 10)) for x in lengths[batch]}
        assert len(buckets) == 1
    unbucketed = BatchSampler(data, 16, bucketing=False, seed=1).epoch(0)
    assert len(unbucketed) == math.ceil(len(data) / 16)
    assert any(len({int(math.ceil(x / 10)) for x in lengths[b]}) > 1 for b in unbucketed)


def test_ranks_get_disjoint_batches_of_equal_count():
    data = _data()
    a = BatchSampler(data, 16, seed=3, world_size=2, rank=0).epoch(2)
    b = BatchSampler(data, 16, seed=3, world_size=2, rank=1).epoch(2)
    assert len(a) == len(b)
    assert not set(np.concatenate(a).tolist()) & set(np.concatenate(b).tolist())


def test_limit_gives_shards_of_different_size_the_same_number_of_steps():
    # ShardedByS3Key: hosts hold shards of different sizes; DDP needs the same step count everywhere
    small = BatchSampler(_data(100, seed=1), 16, seed=3)
    large = BatchSampler(_data(300, seed=2), 16, seed=3)
    assert len(small) < len(large)
    large.limit = len(small)
    for epoch in (0, 1):
        assert len(large.epoch(epoch)) == len(small.epoch(epoch))
    assert len(np.unique(np.concatenate(large.epoch(0)))) == sum(len(b) for b in large.epoch(0))


def test_train_distribution_is_read_from_inputdataconfig(tmp_path):
    import json

    from s2s_algorithm.train import _train_distribution

    paths = MLPaths(tmp_path)
    assert _train_distribution(paths) == "FullyReplicated"
    paths.config_dir.mkdir(parents=True)
    paths.inputdataconfig_file.write_text(json.dumps({
        "train": {"TrainingInputMode": "File", "S3DistributionType": "ShardedByS3Key"},
        "validation": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}}))
    assert _train_distribution(paths) == "ShardedByS3Key"


def test_make_batch_adds_bos_eos_and_pads():
    data = ParallelData([np.array([5, 6], np.int32), np.array([], np.int32)],
                        [np.array([7], np.int32), np.array([8, 9, 10], np.int32)])
    batch = make_batch(data, [0, 1])
    assert batch.src.tolist() == [[5, 6, 3], [3, 0, 0]]
    assert batch.src_lengths.tolist() == [3, 1]
    assert batch.trg_in.tolist() == [[2, 7, 0, 0], [2, 8, 9, 10]]
    assert batch.trg_out.tolist() == [[7, 3, 0, 0], [8, 9, 10, 3]]
    assert batch.num_tokens == 6


def _optimizer(hp):
    return build_optimizer([torch.nn.Parameter(torch.zeros(2))], hp)


@pytest.mark.parametrize("kind", ["fixed_rate_inv_t", "fixed_rate_inv_sqrt_t"])
def test_fixed_rate_schedules_halve_after_the_half_life(kind):
    hp = Hyperparameters.from_dict({"lr_scheduler_type": kind, "learning_rate": 0.1,
                                    "fixed_rate_lr_half_life": 4, "checkpoint_frequency_num_batches": 25})
    opt = _optimizer(hp)
    sched = LRScheduler(opt, hp)
    assert sched.step_update(0) == pytest.approx(0.1)
    assert sched.step_update(100) == pytest.approx(0.05)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    assert sched.step_update(50) > 0.05


def test_plateau_reduce_after_threshold_checkpoints_and_state_round_trip():
    hp = Hyperparameters.from_dict({"learning_rate": 0.2, "plateau_reduce_lr_factor": 0.5,
                                    "plateau_reduce_lr_threshold": 2})
    opt = _optimizer(hp)
    sched = LRScheduler(opt, hp)
    sched.step_checkpoint(False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)
    sched.step_checkpoint(False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    sched.step_checkpoint(True)
    sched.step_checkpoint(False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    other = LRScheduler(_optimizer(hp), hp)
    other.load_state_dict(sched.state_dict())
    assert other.lr == pytest.approx(0.1) and other.bad_checkpoints == 1


@pytest.mark.parametrize("kind,cls", [("adam", "Adam"), ("sgd", "SGD"), ("rmsprop", "RMSprop")])
def test_optimizer_types(kind, cls):
    hp = Hyperparameters.from_dict({"optimizer_type": kind, "weight_decay": 0.01,
                                    **({"momentum": 0.9} if kind == "sgd" else {})})
    opt = _optimizer(hp)
    assert type(opt).__name__ == cls
    assert opt.param_groups[0]["weight_decay"] == 0.01
    if kind == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9


def test_ml_paths_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("S2S_ML_ROOT", str(tmp_path))
    paths = MLPaths()
    assert paths.data_dir("train") == tmp_path / "input" / "data" / "train"
    assert paths.failure_file == tmp_path / "output" / "failure"
    assert paths.checkpoint_dir == tmp_path / "checkpoints"
    monkeypatch.delenv("S2S_ML_ROOT")
    assert str(MLPaths().model_dir) == "/opt/ml/model"
