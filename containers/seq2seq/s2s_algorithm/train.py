"""The training program ``s2s-train`` (the container's ``train``).

Reads ``/opt/ml/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json`` and the
``train``, ``validation`` and ``vocab`` channels; trains; every ``checkpoint_frequency_num_batches``
updates evaluates on the validation set (perplexity, accuracy, BLEU), checkpoints to
``/opt/ml/checkpoints`` and keeps the best parameters by ``optimized_metric``; stops early after
``checkpoint_threshold`` checkpoints without improvement (not before ``min_num_epochs``), or at
``max_num_batches`` / ``max_num_epochs``; evaluates and checkpoints once more at the end; writes the
best model to ``/opt/ml/model``. A restart with ``checkpoints/training_state.pt`` present resumes
where it stopped. SIGTERM (StopTrainingJob, a spot interruption) ends training after the current
update, saving the training state and the best model so far. A NaN or infinite training loss fails
the job (exit 2) before anything computed from it is logged, checkpointed or written; a checkpoint
that does not fit the model (names, shapes, optimizer state) is ignored with a warning (training
starts over), one of a different model configuration fails the job. On failure one paragraph goes to ``/opt/ml/output/failure`` and the exit code is
non-zero (2 for bad input, 1 otherwise).

Run outside a container with ``S2S_ML_ROOT=/some/dir s2s-train``.
"""
from __future__ import annotations

import logging
import math
import os
import random
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from s2s_aws.errors import InputError, S2SError
from s2s_aws.contract.layout import TRAIN_CHANNEL, VALIDATION_CHANNEL, VOCAB_CHANNEL
from s2s_aws.contract.metrics import corpus_score, format_metric

from . import distributed
from .checkpoint import (BEST_MODEL, TRAINING_STATE, UnsafeFileError, atomic_write, is_state_dict,
                         load_state_dict, load_training_state, rng_state, save_torch, save_training_state,
                         set_rng_state, write_model_dir)
from .config import ModelConfig, check_model_fits
from .data import (CHANNELS, PAD_ID, BatchSampler, ParallelData, iter_eval_batches, load_channel,
                   load_vocabularies, make_batch, read_json)
from .decode import translate_ids
from .kernels import argmax_rows
from .model import Seq2Seq
from .optim import LRScheduler, build_optimizer
from .paths import MLPaths
from .translator import vocab_size

logger = logging.getLogger(__name__)

__all__ = ["main", "TrainState", "TrainingDiverged", "evaluate", "write_failure"]

_MAXIMIZE = {"accuracy": True, "bleu": True, "perplexity": False}

#: set by SIGTERM (SageMaker's StopTrainingJob, spot interruption): stop after the current update
_STOP_REQUESTED = False


def _request_stop(signum: int, frame: Any) -> None:  # noqa: ARG001
    global _STOP_REQUESTED
    _STOP_REQUESTED = True


@dataclass
class TrainState:
    """Counters saved in every checkpoint."""

    step: int = 0                  # updates done
    epoch: int = 0                 # epoch in progress (0-based)
    batch_in_epoch: int = 0        # next batch of that epoch
    epochs_done: int = 0
    best: float | None = None
    best_step: int = 0
    bad_checkpoints: int = 0       # consecutive checkpoints without improvement
    checkpoints: int = 0
    last_checkpoint_step: int = -1
    early_stopped: bool = False


class TrainingDiverged(InputError):
    """The training loss became NaN or infinite: the hyperparameters make training diverge (exit 2)."""


# -- set-up --------------------------------------------------------------------------------------
def write_failure(paths: MLPaths, message: str) -> None:
    """Write the one-paragraph failure reason SageMaker shows as ``FailureReason``."""
    text = " ".join(str(message).split())
    try:
        atomic_write(paths.failure_file, lambda f: f.write(text + "\n"), binary=False)
    except OSError:  # nowhere to write: the log still has it
        logger.exception("cannot write %s", paths.failure_file)
    print(f"FAILURE: {text}", file=sys.stderr, flush=True)


def _load_hyperparameters(paths: MLPaths) -> Any:
    from s2s_aws.contract.hyperparameters import Hyperparameters

    if not paths.hyperparameters_file.is_file():
        logger.warning("%s not found: using the default hyperparameters", paths.hyperparameters_file)
        return Hyperparameters.from_strings({})
    return Hyperparameters.from_strings(read_json(paths.hyperparameters_file, "hyperparameters"))


def _check_channels(paths: MLPaths) -> None:
    declared = None
    if paths.inputdataconfig_file.is_file():
        declared = set(read_json(paths.inputdataconfig_file, "input data config"))
    for channel in CHANNELS:
        folder = paths.data_dir(channel)
        if (declared is not None and channel not in declared) or not folder.is_dir():
            raise InputError(
                f"The training job has no '{channel}' channel (expected its files in {folder}). The "
                "algorithm needs three channels: train and validation (RecordIO-protobuf files) and "
                "vocab (vocab.src.json, vocab.trg.json); add the missing one to the job's input data "
                "configuration (s2s-aws upload creates all three).")


def _train_distribution(paths: MLPaths) -> str:
    """The train channel's S3DataDistributionType ("FullyReplicated" when not stated)."""
    if not paths.inputdataconfig_file.is_file():
        return "FullyReplicated"
    config = read_json(paths.inputdataconfig_file, "input data config").get(TRAIN_CHANNEL) or {}
    return str(config.get("S3DistributionType") or config.get("S3DataDistributionType") or "FullyReplicated")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def _autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    if mode == "off":
        return None
    if device.type == "cuda":
        if mode == "fp16":
            return torch.float16
        if mode == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        logger.warning("mixed_precision=fp16 needs a GPU: training in float32 on the CPU")
    return None


# -- evaluation ----------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: Seq2Seq, data: ParallelData, hp: Any, trg_tokens: list[str], device: torch.device,
             bleu_sample_size: int) -> dict[str, float]:
    """Validation perplexity and accuracy (teacher forced), and BLEU on ``bleu_sample_size`` pairs
    (0: skip, -1: all)."""
    was_training = model.training
    model.eval()
    nll = correct = tokens = 0.0
    for batch in iter_eval_batches(data, hp.batch_size):
        batch = batch.to(device)
        select = batch.trg_out != PAD_ID
        logits, _ = model(batch.src, batch.src_lengths, batch.trg_in, select)
        logits = logits.float()
        target = batch.trg_out[select]
        nll += float(F.cross_entropy(logits, target, reduction="sum"))
        correct += float((argmax_rows(logits) == target).sum())
        tokens += float(target.numel())
    result = {"perplexity": math.exp(min(nll / max(tokens, 1.0), 100.0)), "accuracy": correct / max(tokens, 1.0)}
    n = len(data) if bleu_sample_size < 0 else min(bleu_sample_size, len(data))
    if n > 0:
        sources = [s.tolist() for s in data.sources[:n]]
        hyps = translate_ids(model, sources, beam_size=int(hp.beam_size),
                             max_seq_len_target=int(hp.max_seq_len_target),
                             length_penalty_alpha=float(hp.length_penalty_alpha),
                             length_penalty_beta=float(hp.length_penalty_beta),
                             batch_size=int(hp.batch_size), device=device)
        out = [" ".join(trg_tokens[i] for i in h.ids) for h in hyps]
        refs = [" ".join(trg_tokens[i] for i in t.tolist()) for t in data.targets[:n]]
        result["bleu"] = corpus_score(out, refs)[0]
    model.train(was_training)
    return result


# -- the worker ----------------------------------------------------------------------------------
class Trainer:
    """One training process (one GPU, or the CPU)."""

    def __init__(self, paths: MLPaths, hp: Any, plan: distributed.WorldPlan, rank: int, device: torch.device):
        self.paths, self.hp, self.plan, self.rank, self.device = paths, hp, plan, rank, device
        self.is_main = rank == 0
        src_vocab, trg_vocab = load_vocabularies(paths.data_dir(VOCAB_CHANNEL))
        self.trg_tokens = [""] * vocab_size(trg_vocab)
        for token, i in trg_vocab.items():
            self.trg_tokens[i] = token
        sizes = dict(src_vocab_size=vocab_size(src_vocab), trg_vocab_size=vocab_size(trg_vocab),
                     max_seq_len_source=hp.max_seq_len_source, max_seq_len_target=hp.max_seq_len_target)
        self.train_data = load_channel(paths.data_dir(TRAIN_CHANNEL), TRAIN_CHANNEL, **sizes)
        self.val_data = load_channel(paths.data_dir(VALIDATION_CHANNEL), VALIDATION_CHANNEL, **sizes)
        self.cfg = ModelConfig.from_hyperparameters(hp, sizes["src_vocab_size"], sizes["trg_vocab_size"])

        _seed_everything(int(hp.seed))
        self.model = Seq2Seq(self.cfg).to(device)
        self.ddp = None
        if plan.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = build_optimizer(self.model.parameters(), hp)
        self.scheduler = LRScheduler(self.optimizer, hp)
        self.amp_dtype = _autocast_dtype(hp.mixed_precision, device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        # FullyReplicated (the default): every host holds all the data and each process takes every
        # world_size-th batch. ShardedByS3Key: each host holds its own shard, so only the processes
        # of this host split it, and all processes agree on the shortest epoch (DDP needs equal steps).
        sharded = _train_distribution(paths) == "ShardedByS3Key" and len(plan.hosts) > 1
        self.sampler = BatchSampler(self.train_data, hp.batch_size, bucket_width=hp.bucket_width,
                                    bucketing=hp.bucketing_enabled, seed=int(hp.seed),
                                    world_size=plan.procs_per_host if sharded else plan.world_size,
                                    rank=rank % plan.procs_per_host if sharded else rank)
        if sharded:
            steps = torch.tensor([len(self.sampler)], dtype=torch.long,
                                 device=device if plan.backend == "nccl" else "cpu")
            torch.distributed.all_reduce(steps, op=torch.distributed.ReduceOp.MIN)
            self.sampler.limit = int(steps.item())
        self.state = TrainState()
        self.bleu_sample_size = int(hp.effective_bleu_sample_size)   # optimized_metric=bleu: never 0
        self.checkpoint_dir = paths.checkpoint_dir
        if self.is_main:
            logger.info("model: %d parameters; train %d pairs, validation %d pairs; device %s; world %d%s",
                        self.model.num_parameters(), len(self.train_data), len(self.val_data), device,
                        plan.world_size, f"; autocast {self.amp_dtype}" if self.amp_dtype else "")

    # -- checkpoints ------------------------------------------------------------------------
    def _resume(self) -> None:
        path = self.checkpoint_dir / TRAINING_STATE
        if not path.is_file():
            return
        try:
            ckpt = load_training_state(path, map_location=self.device)
        except UnsafeFileError as e:  # never run code from a checkpoint; start over instead
            logger.warning("refusing checkpoint: %s Starting from scratch.", e)
            return
        except Exception as e:  # a damaged checkpoint must not end a job that can start over
            logger.warning("cannot read checkpoint %s (%s): starting from scratch", path, e)
            return
        saved = ckpt.get("model_config") or {}
        differs = sorted(k for k, v in self.cfg.to_dict().items() if k in saved and saved[k] != v)
        if differs:
            raise InputError(
                f"The checkpoint {path} was written by a job with a different model: "
                + ", ".join(f"{k}={saved[k]!r} there, {getattr(self.cfg, k)!r} now" for k in differs)
                + ". Resume with the same hyperparameters and data, or give the job a new checkpoint "
                "location (an empty /opt/ml/checkpoints) to start over.")
        problem = self._misfit(ckpt)
        if problem:  # e.g. written by another version of the model code: as damaged, start over
            logger.warning("checkpoint %s does not fit this model (%s): starting from scratch", path, problem)
            return
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if ckpt.get("scaler"):
                self.scaler.load_state_dict(ckpt["scaler"])
        except Exception as e:  # checked above; what is left may have loaded in part: do not train on it
            raise InputError(f"The checkpoint {path} could not be loaded into the model ({type(e).__name__}: "
                             f"{str(e)[:300]}). Give the job a new checkpoint location (an empty "
                             "/opt/ml/checkpoints) to start over.") from e
        self.state = TrainState(**ckpt["state"])
        rng = ckpt.get("rng", {})
        try:
            if self.is_main and rng:
                set_rng_state(rng)
            else:
                torch.manual_seed(int(self.hp.seed) + self.rank + self.state.step)
        except Exception as e:  # the RNG state only matters for bit-identical resumes
            logger.warning("checkpoint %s: cannot restore the random number generators (%s); seeding "
                           "from seed + step instead", path, e)
            torch.manual_seed(int(self.hp.seed) + self.rank + self.state.step)
        if self.is_main:
            print(f"resuming from checkpoint {path}: step {self.state.step}, epoch {self.state.epoch + 1}, "
                  f"batch {self.state.batch_in_epoch} of the epoch, best {self.hp.optimized_metric} "
                  f"{self.state.best}", flush=True)

    def _misfit(self, ckpt: dict[str, Any]) -> str:
        """Why the checkpoint's model, optimizer, scheduler or counters do not fit this trainer ("" if they do).

        Checked before anything is loaded, so a misfit leaves the fresh model untouched.
        """
        def shapes(items: dict[str, Any]) -> dict[str, tuple[int, ...]]:
            return {k: tuple(v.shape) for k, v in items.items()}

        model = ckpt.get("model")
        if not is_state_dict(model):
            return "no model state dict of parameter names and tensors"
        want, have = shapes(self.model.state_dict()), shapes(model)
        missing, unexpected = sorted(want.keys() - have.keys()), sorted(have.keys() - want.keys())
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"{len(missing)} parameter(s) missing, e.g. {missing[0]}")
            if unexpected:
                parts.append(f"{len(unexpected)} unknown, e.g. {unexpected[0]}")
            return "; ".join(parts)
        wrong = sorted(k for k in want if want[k] != have[k])
        if wrong:
            return f"{len(wrong)} parameter(s) of another shape, e.g. {wrong[0]}: {have[wrong[0]]} there, {want[wrong[0]]} here"
        opt = ckpt.get("optimizer")
        if not isinstance(opt, dict) or not isinstance(opt.get("param_groups"), list) \
                or not isinstance(opt.get("state"), dict):
            return "no optimizer state"
        groups = self.optimizer.param_groups
        if len(opt["param_groups"]) != len(groups) or any(
                not isinstance(g, dict) or len(g.get("params") or ()) != len(cur["params"])
                for g, cur in zip(opt["param_groups"], groups)):
            return "the optimizer state is for another set of parameters"
        params = [p for g in groups for p in g["params"]]
        for index, slot in opt["state"].items():
            if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(slot, dict):
                return "the optimizer state is for another set of parameters"
            for name, value in slot.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[index].shape:
                    return f"optimizer value {name!r} of another shape ({tuple(value.shape)} there, " \
                           f"{tuple(params[index].shape)} here)"
        sched = ckpt.get("scheduler")
        if not isinstance(sched, dict) or not isinstance(sched.get("lr"), (int, float)) \
                or not isinstance(sched.get("bad_checkpoints"), int):
            return "no learning-rate scheduler state"
        if ckpt.get("scaler") is not None and not isinstance(ckpt["scaler"], dict):
            return "the loss-scaler state is not a mapping"
        counters = ckpt.get("state")
        fields = set(TrainState.__dataclass_fields__)
        if not isinstance(counters, dict) or set(counters) - fields or not {"step", "epoch"} <= set(counters):
            return "the training counters are of another version"
        defaults = asdict(TrainState())
        for key, value in counters.items():
            default = defaults[key]
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= -1
            else:
                ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
            if not ok:
                return f"training counter {key}={value!r} is not a {type(default).__name__}"
        return ""

    def _save_state(self) -> None:
        rng = rng_state(cuda=self.device.type == "cuda")
        save_training_state({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                    "state": asdict(self.state), "rng": rng, "model_config": self.cfg.to_dict(),
                    "hyperparameters": self.hp.to_strings(include_defaults=True)},
                   self.checkpoint_dir / TRAINING_STATE)

    def checkpoint(self) -> None:
        """Evaluate, keep the best, save the training state, decide on early stopping (all ranks)."""
        st, hp = self.state, self.hp
        improved = stop = 0.0
        if self.is_main:
            t0 = time.time()
            metrics = evaluate(self.model, self.val_data, hp, self.trg_tokens, self.device, self.bleu_sample_size)
            for name in ("perplexity", "accuracy", "bleu"):
                if name in metrics:
                    print(format_metric(f"validation:{name}", metrics[name], step=st.step,
                                        epoch=st.epochs_done + 1), flush=True)
            value = metrics[hp.optimized_metric]
            better = st.best is None or (value > st.best if _MAXIMIZE[hp.optimized_metric] else value < st.best)
            st.checkpoints += 1
            st.last_checkpoint_step = st.step
            if better:
                st.best, st.best_step, st.bad_checkpoints = value, st.step, 0
                save_torch(self.model.state_dict(), self.checkpoint_dir / BEST_MODEL)
                improved = 1.0
            else:
                st.bad_checkpoints += 1
            if st.bad_checkpoints >= hp.checkpoint_threshold and st.epochs_done >= hp.min_num_epochs:
                st.early_stopped = True
                stop = 1.0
            self.scheduler.step_checkpoint(bool(improved))
            self._save_state()
            print(f"checkpoint {st.checkpoints} at step {st.step}: {hp.optimized_metric}={value:.4f} "
                  f"(best {st.best:.4f} at step {st.best_step}; {st.bad_checkpoints} without improvement; "
                  f"{time.time() - t0:.1f}s)", flush=True)
        else:
            st.checkpoints += 1
            st.last_checkpoint_step = st.step
        improved, stop = distributed.broadcast_flags([improved, stop], self.device)
        if not self.is_main:
            self.scheduler.step_checkpoint(bool(improved))
            st.early_stopped = bool(stop)
        distributed.barrier()

    # -- training ---------------------------------------------------------------------------
    def _limits_reached(self) -> bool:
        st, hp = self.state, self.hp
        if st.early_stopped:
            return True
        if hp.max_num_batches is not None and hp.max_num_batches > 0 and st.step >= hp.max_num_batches:
            return True
        return hp.max_num_epochs is not None and st.epochs_done >= hp.max_num_epochs

    def _train_step(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        module = self.ddp if self.ddp is not None else self.model
        batch = batch.to(self.device)
        select = batch.trg_out != PAD_ID
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            logits, _ = module(batch.src, batch.src_lengths, batch.trg_in, select)
        logits = logits.float()
        target = batch.trg_out[select]
        ntok = batch.num_tokens
        loss = F.cross_entropy(logits, target, reduction="sum",
                               label_smoothing=float(self.hp.label_smoothing)) / ntok
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clip = self.hp.effective_clip_gradient   # None: clip_gradient <= 0 turns clipping off
        if clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_value_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with torch.no_grad():
            nll = (loss.detach() * ntok if not self.hp.label_smoothing else
                   F.cross_entropy(logits, target, reduction="sum"))
            correct = (argmax_rows(logits) == target).sum()
            # the first update whose loss is NaN or infinite, kept on the device (no sync per update)
            self._first_bad_step = torch.where(~torch.isfinite(loss.detach()) & (self._first_bad_step < 0),
                                               self.state.step + 1, self._first_bad_step)
        return nll.detach(), correct, torch.tensor(ntok)

    def _check_finite(self) -> None:
        """Fail the job (all ranks together) if a training loss so far was NaN or infinite.

        Called at every log line, before every checkpoint and before the end, so nothing computed
        after the loss went bad is logged, saved or delivered; the checkpoints written before stay.
        """
        first = self._first_bad_step
        if self.plan.world_size > 1:   # the earliest bad step on any rank
            never = torch.iinfo(torch.long).max
            first = torch.where(first < 0, never, first)
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
            first = torch.where(first == never, -1, first)
        step = int(first.item())
        if step < 0:
            return
        hp = self.hp
        clip = hp.effective_clip_gradient
        last = self.state.last_checkpoint_step
        raise TrainingDiverged(
            f"Training diverged: the training loss became NaN or infinite at step {step}, so the "
            f"parameters cannot be trusted; the job stopped without writing a model"
            + (f" (the checkpoint of step {last}, from before, is kept)" if last > 0 else "")
            + f". Hyperparameters: learning_rate={float(hp.learning_rate):g}, clip_gradient="
            f"{'off' if clip is None else f'{clip:g}'}, mixed_precision={hp.mixed_precision}"
            f"{f' ({self.amp_dtype})' if self.amp_dtype is not None else ''}, optimizer_type={hp.optimizer_type}. "
            "Try a lower learning_rate (10x lower is a good first step), "
            + ("clip_gradient=1 to bound every update, " if clip is None else "a smaller clip_gradient, ")
            + "and mixed_precision=off if it was fp16 or bf16. Start again with an empty checkpoint location: "
            "a restart on this one resumes the old learning-rate schedule.")

    def _stop_requested(self) -> bool:
        """Whether any process got SIGTERM (all processes agree, so they stop at the same update;
        with several processes they compare notes every 10 updates)."""
        if self.plan.world_size == 1:
            return _STOP_REQUESTED
        if self.state.step % 10:
            return False
        flag = torch.tensor([1.0 if _STOP_REQUESTED else 0.0], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def run(self) -> None:
        self._resume()
        st, hp = self.state, self.hp
        self._first_bad_step = torch.full((), -1, dtype=torch.long, device=self.device)
        freq = int(hp.checkpoint_frequency_num_batches)
        log_every = max(1, min(100, freq))
        nll_sum = torch.zeros((), device=self.device)
        correct_sum = torch.zeros((), device=self.device)
        tokens = 0
        t_log = time.time()
        self.model.train()
        stopped = False
        while not stopped and not self._limits_reached():
            batches = self.sampler.epoch(st.epoch)
            while st.batch_in_epoch < len(batches) and not self._limits_reached():
                batch = make_batch(self.train_data, batches[st.batch_in_epoch])
                st.batch_in_epoch += 1
                self.scheduler.step_update(st.step)
                nll, correct, ntok = self._train_step(batch)
                st.step += 1
                nll_sum += nll
                correct_sum += correct
                tokens += int(ntok)
                if st.step % log_every == 0 or st.step % freq == 0:
                    self._check_finite()   # a NaN loss is never logged, checkpointed or delivered
                if st.step % log_every == 0 and self.is_main:
                    elapsed = max(time.time() - t_log, 1e-9)
                    mean = float(nll_sum) / max(tokens, 1)
                    acc = float(correct_sum) / max(tokens, 1)
                    print(f"step {st.step} epoch {st.epoch + 1} loss {mean:.4f} lr {self.scheduler.lr:.6g} "
                          f"target tokens/s {tokens * self.plan.world_size / elapsed:.0f}", flush=True)
                    print(format_metric("train:perplexity", math.exp(min(mean, 100.0)), step=st.step,
                                        epoch=st.epoch + 1), flush=True)
                    print(format_metric("train:accuracy", acc, step=st.step, epoch=st.epoch + 1), flush=True)
                    nll_sum.zero_()
                    correct_sum.zero_()
                    tokens, t_log = 0, time.time()
                if st.step % freq == 0:
                    self.checkpoint()
                    t_log = time.time()
                if self._stop_requested():
                    stopped = True
                    break
            if st.batch_in_epoch >= len(batches):
                st.epoch += 1
                st.epochs_done += 1
                st.batch_in_epoch = 0
                if self.is_main:
                    print(f"epoch {st.epochs_done} done at step {st.step}", flush=True)
        self._check_finite()
        if stopped:
            # no evaluation: save where we are (a restart resumes here) and the best model so far
            if self.is_main:
                self._save_state()
                print(f"stop requested (SIGTERM): training state saved at step {st.step}; a restart "
                      "with this checkpoint folder resumes from here", flush=True)
                self.write_model()
            distributed.barrier()
            return
        if st.last_checkpoint_step != st.step:
            self.checkpoint()
        if self.is_main:
            reason = ("early stopping" if st.early_stopped else "max_num_batches" if hp.max_num_batches > 0
                      and st.step >= hp.max_num_batches else "max_num_epochs")
            print(f"training finished at step {st.step} ({reason}); best {hp.optimized_metric} "
                  f"{st.best:.4f} at step {st.best_step}", flush=True)
            self.write_model()

    def write_model(self) -> None:
        best = self.checkpoint_dir / BEST_MODEL
        state_dict = load_state_dict(best) if best.is_file() else self.model.state_dict()
        info = {"model_config": self.cfg.to_dict(), "best_step": self.state.best_step,
                "optimized_metric": self.hp.optimized_metric, "best_metric": self.state.best,
                "steps": self.state.step}
        write_model_dir(self.paths.model_dir, state_dict, self.hp.to_strings(include_defaults=True),
                        self.paths.data_dir(VOCAB_CHANNEL), info)
        print(f"model written to {self.paths.model_dir}", flush=True)


def _worker(local_rank: int, plan: distributed.WorldPlan, root: str, hp_strings: dict[str, str]) -> None:
    """Entry point of one training process (in-process when the host has a single one)."""
    from s2s_aws.contract.hyperparameters import Hyperparameters

    paths = MLPaths(root)
    hp = Hyperparameters.from_strings(hp_strings)
    signal.signal(signal.SIGTERM, _request_stop)
    if plan.procs_per_host > 1:   # a spawned process starts with logging unconfigured
        _configure_logging()
    try:
        rank, device = distributed.init_process(plan, local_rank)
        try:
            Trainer(paths, hp, plan, rank, device).run()
        finally:
            distributed.cleanup()
    except S2SError as e:
        if plan.procs_per_host > 1:   # the parent only sees a traceback: say it here
            write_failure(paths, str(e))
        raise


def _forward_sigterm(signum: int, frame: Any) -> None:  # noqa: ARG001
    """In the parent of the training processes: pass SIGTERM on, so they save and stop together."""
    import multiprocessing

    for child in multiprocessing.active_children():
        try:
            os.kill(child.pid, signal.SIGTERM)
        except (OSError, TypeError):
            pass


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """``s2s-train``: train from the ``/opt/ml`` tree (``$S2S_ML_ROOT``); returns the exit code."""
    _configure_logging()
    paths = MLPaths()
    try:
        paths.failure_file.unlink()
    except OSError:
        pass
    try:
        hp = _load_hyperparameters(paths)
        _check_channels(paths)
        src_vocab, trg_vocab = load_vocabularies(paths.data_dir(VOCAB_CHANNEL))   # fail before spawning anything
        resourceconfig = read_json(paths.resourceconfig_file, "resource config") \
            if paths.resourceconfig_file.is_file() else None
        plan = distributed.plan_world(resourceconfig)
        check_model_fits(hp, vocab_size(src_vocab), vocab_size(trg_vocab),   # exit 2 with the estimate
                         gpus=plan.procs_per_host if plan.gpus_per_host else 0)
        paths.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        paths.model_dir.mkdir(parents=True, exist_ok=True)
        print(f"s2s-train: root {paths.root}; hosts {plan.hosts} (this: {plan.current_host}); "
              f"{plan.procs_per_host} process(es) per host; hyperparameters {hp.to_strings()}", flush=True)
        for note in hp.notes():   # accepted combinations, and how they are read
            print(f"hyperparameters: {note}", flush=True)
        if plan.procs_per_host > 1:
            signal.signal(signal.SIGTERM, _forward_sigterm)
        distributed.spawn(_worker, plan, str(paths.root), hp.to_strings(include_defaults=True))
        return 0
    except S2SError as e:
        if not paths.failure_file.is_file():
            write_failure(paths, str(e))
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - every failure must end in a failure file
        traceback.print_exc()
        if not paths.failure_file.is_file():
            summary = str(e).strip().splitlines()[-1] if str(e).strip() else ""
            write_failure(paths, f"Unexpected error in the training program: {type(e).__name__}: {summary}. "
                                 "The job log has the full traceback; if the input looks right, report it "
                                 "with that log.")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
