"""Optimizers and learning-rate schedulers.

Schedulers (``lr_scheduler_type``):

- ``plateau_reduce``: multiply the rate by ``plateau_reduce_lr_factor`` after
  ``plateau_reduce_lr_threshold`` checkpoints without improvement of ``optimized_metric``.
- ``fixed_rate_inv_t``: ``lr / (1 + t / H)``; ``fixed_rate_inv_sqrt_t``: ``lr / sqrt(1 + 3 t / H)``,
  ``t`` in updates and ``H = fixed_rate_lr_half_life * checkpoint_frequency_num_batches`` -- both halve
  the rate after ``fixed_rate_lr_half_life`` checkpoints.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Iterable

import torch

logger = logging.getLogger(__name__)

__all__ = ["build_optimizer", "LRScheduler"]


def build_optimizer(params: Iterable[torch.nn.Parameter], hp: Any) -> torch.optim.Optimizer:
    """``optimizer_type`` adam / sgd (``momentum``) / rmsprop with ``learning_rate`` and ``weight_decay``.

    Adam and SGD use torch's fused single-kernel implementation where the build supports it (CPU and
    CUDA since torch 2.4; several times faster than the per-tensor loop), else the default one.
    """
    lr, wd = float(hp.learning_rate), float(hp.weight_decay)
    kind = hp.optimizer_type
    params = list(params)
    if kind == "adam":
        return _fused_if_possible(torch.optim.Adam, params, lr=lr, weight_decay=wd)
    if kind == "sgd":
        return _fused_if_possible(torch.optim.SGD, params, lr=lr, momentum=float(hp.momentum or 0.0),
                                  weight_decay=wd)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer_type {kind!r}; allowed: adam, sgd, rmsprop")


def _fused_if_possible(cls: type[torch.optim.Optimizer], params: list[torch.nn.Parameter],
                       **kwargs: Any) -> torch.optim.Optimizer:
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError) as e:   # older torch, unsupported device or dtype
        logger.info("fused %s not available (%s): using the default implementation", cls.__name__, e)
        return cls(params, **kwargs)


class LRScheduler:
    """Sets the optimizer's rate per update and per checkpoint; resumable via ``state_dict``."""

    def __init__(self, optimizer: torch.optim.Optimizer, hp: Any):
        self.optimizer = optimizer
        self.kind = hp.lr_scheduler_type
        if self.kind not in ("plateau_reduce", "fixed_rate_inv_t", "fixed_rate_inv_sqrt_t"):
            raise ValueError(f"unknown lr_scheduler_type {self.kind!r}")
        self.base_lr = float(hp.learning_rate)
        self.factor = float(hp.plateau_reduce_lr_factor)
        self.threshold = int(hp.plateau_reduce_lr_threshold)
        self.half_life_updates = max(1, int(hp.fixed_rate_lr_half_life) * int(hp.checkpoint_frequency_num_batches))
        self.lr = self.base_lr
        self.bad_checkpoints = 0

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def step_update(self, updates_done: int) -> float:
        """Call before update number ``updates_done + 1``; returns the rate used."""
        if self.kind == "fixed_rate_inv_t":
            self.lr = self.base_lr / (1.0 + updates_done / self.half_life_updates)
        elif self.kind == "fixed_rate_inv_sqrt_t":
            self.lr = self.base_lr / math.sqrt(1.0 + 3.0 * updates_done / self.half_life_updates)
        self._apply()
        return self.lr

    def step_checkpoint(self, improved: bool) -> None:
        """Call after each checkpoint's evaluation."""
        if self.kind != "plateau_reduce":
            return
        if improved:
            self.bad_checkpoints = 0
            return
        self.bad_checkpoints += 1
        if self.bad_checkpoints >= self.threshold:
            self.lr *= self.factor
            self.bad_checkpoints = 0
            logger.info("no improvement for %d checkpoints: learning rate now %.6g", self.threshold, self.lr)
            self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "bad_checkpoints": self.bad_checkpoints}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr = float(state["lr"])
        self.bad_checkpoints = int(state["bad_checkpoints"])
        self._apply()
