"""The model configuration: the architectural hyperparameters as one plain, typed object, and the
up-front memory estimate of a model before anything is allocated.

Example::

    cfg = ModelConfig.from_hyperparameters(hp, src_vocab_size=50004, trg_vocab_size=50004)
    estimate = estimate_training_memory(cfg, hp.optimizer_type, hp.momentum)
    estimate.parameters, estimate.bytes     # exact count (built on torch's meta device), bytes
    check_model_fits(hp, 50004, 50004, gpus=0)   # InputError (exit 2) with the estimate if it cannot fit

The estimate counts what training keeps for the whole run: float32 weights, their gradients and the
optimizer's state (adam: 2 values per weight, rmsprop and sgd with momentum: 1, plain sgd: 0). It
leaves out activations, so it is a lower bound: a model refused by it cannot train on this machine.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["ModelConfig", "MemoryEstimate", "count_parameters", "estimate_training_memory",
           "available_memory", "check_model_fits"]

logger = logging.getLogger(__name__)

_GIB = float(1 << 30)


@dataclass
class ModelConfig:
    """Everything needed to build a :class:`~s2s_algorithm.model.Seq2Seq` (names as in the contract)."""

    src_vocab_size: int
    trg_vocab_size: int
    encoder_type: str = "rnn"
    decoder_type: str = "rnn"
    num_embed_source: int = 512
    num_embed_target: int = 512
    embed_dropout_source: float = 0.0
    embed_dropout_target: float = 0.0
    num_layers_encoder: int = 1
    num_layers_decoder: int = 1
    rnn_cell_type: str = "lstm"
    rnn_num_hidden: int = 1024
    rnn_attention_type: str = "mlp"
    rnn_attention_num_hidden: int | None = None
    rnn_attention_in_upper_layers: bool = True
    rnn_decoder_state_init: str = "last"
    rnn_decoder_hidden_dropout: float = 0.0
    rnn_residual_connections: bool = False
    rnn_first_residual_layer: int = 2
    cnn_activation_type: str = "glu"
    cnn_hidden_dropout: float = 0.0
    cnn_kernel_width_encoder: int = 3
    cnn_kernel_width_decoder: int = 5
    cnn_num_hidden: int = 512
    max_seq_len_source: int = 100
    max_seq_len_target: int = 100
    weight_init_type: str = "xavier"
    weight_init_scale: float = 2.34
    xavier_factor_type: str = "in"

    def __post_init__(self) -> None:
        if self.rnn_attention_num_hidden is None:
            self.rnn_attention_num_hidden = self.rnn_num_hidden

    @classmethod
    def from_hyperparameters(cls, hp: Any, src_vocab_size: int, trg_vocab_size: int) -> "ModelConfig":
        """Build from a resolved hyperparameter object (anything with the contract's attribute names)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("src_vocab_size", "trg_vocab_size"):
                continue
            if hasattr(hp, f.name):
                v = getattr(hp, f.name)
                if v is not None:
                    values[f.name] = v
        return cls(src_vocab_size=int(src_vocab_size), trg_vocab_size=int(trg_vocab_size), **values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def encoder_output_dim(self) -> int:
        """Width of the encoder's memory (what attention reads)."""
        return self.rnn_num_hidden if self.encoder_type == "rnn" else self.cnn_num_hidden


@dataclass(frozen=True)
class MemoryEstimate:
    """Parameters of a model and the bytes training keeps for them (weights, gradients, optimizer state)."""

    parameters: int
    bytes: int
    optimizer_values: int     # optimizer state values per parameter

    def __str__(self) -> str:
        return (f"{self.parameters:,} parameters, about {self.bytes / _GIB:,.1f} GiB for float32 weights, "
                f"gradients and {self.optimizer_values} optimizer value(s) per weight (activations not counted)")


def count_parameters(cfg: ModelConfig) -> int:
    """The exact parameter count of ``Seq2Seq(cfg)``, built on torch's meta device (no memory used)."""
    import torch

    from .model import Seq2Seq

    with torch.device("meta"):
        return Seq2Seq(cfg).num_parameters()


def _optimizer_values(optimizer_type: str, momentum: float | None) -> int:
    if optimizer_type == "adam":
        return 2
    if optimizer_type == "sgd":
        return 1 if momentum else 0
    return 1   # rmsprop: the running mean of squared gradients


def estimate_training_memory(cfg: ModelConfig, optimizer_type: str = "adam",
                             momentum: float | None = None) -> MemoryEstimate:
    """What training keeps in memory for the model's parameters (see the module docstring)."""
    n = count_parameters(cfg)
    values = _optimizer_values(optimizer_type, momentum)
    return MemoryEstimate(parameters=n, bytes=n * 4 * (2 + values), optimizer_values=values)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cpu_memory_available() -> int | None:
    """Memory this process may still use: MemAvailable, lowered by a cgroup (container) limit."""
    candidates: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit = _read_int(Path(limit_file))
        if limit is not None and limit < (1 << 60):   # cgroup v1 says "unlimited" with a huge number
            candidates.append(max(0, limit - (_read_int(Path(usage_file)) or 0)))
            break
    return min(candidates) if candidates else None


def available_memory(gpus: int = 0) -> tuple[int, str] | None:
    """``(bytes, what)``: the smallest GPU's memory when training on ``gpus`` GPUs (each holds the
    whole model), else the host memory still available; None when it cannot be told."""
    if gpus > 0:
        try:
            import torch

            total = min(torch.cuda.get_device_properties(i).total_memory for i in range(gpus))
            return int(total), "memory of each GPU"
        except Exception as e:  # noqa: BLE001 - no estimate is better than failing the job here
            logger.debug("cannot read the GPU memory (%s): no up-front memory check", e)
            return None
    available = _cpu_memory_available()
    return (available, "memory available on this host") if available is not None else None


#: the hyperparameters that size a model, for the message
_SIZE_NAMES = ("num_layers_encoder", "num_layers_decoder", "rnn_num_hidden", "cnn_num_hidden",
               "rnn_attention_num_hidden", "num_embed_source", "num_embed_target")


def check_model_fits(hp: Any, src_vocab_size: int, trg_vocab_size: int, *, gpus: int = 0,
                     available: tuple[int, str] | None = None) -> MemoryEstimate:
    """Estimate the training memory of the model ``hp`` describes and raise
    :class:`~s2s_aws.errors.InputError` (exit 2) when it cannot fit in ``available`` (default:
    :func:`available_memory`). Returns the estimate."""
    from s2s_aws.errors import InputError

    cfg = ModelConfig.from_hyperparameters(hp, src_vocab_size, trg_vocab_size)
    estimate = estimate_training_memory(cfg, getattr(hp, "optimizer_type", "adam"), getattr(hp, "momentum", None))
    room = available if available is not None else available_memory(gpus)
    if room is not None and estimate.bytes > room[0]:
        parts = {cfg.encoder_type, cfg.decoder_type}
        sizes = ", ".join(f"{name}={getattr(cfg, name)}" for name in _SIZE_NAMES
                          if not name.startswith(("rnn_", "cnn_")) or name[:3] in parts)
        raise InputError(
            f"The model these hyperparameters describe cannot fit: {estimate}, with vocabularies of "
            f"{src_vocab_size:,} source and {trg_vocab_size:,} target tokens; the {room[1]} is "
            f"{room[0] / _GIB:,.1f} GiB. Lower the sizes ({sizes}) or the vocabulary sizes, or train on "
            "an instance with more memory.")
    logger.info("model memory estimate: %s; %s", estimate,
                f"the {room[1]} is {room[0] / _GIB:,.1f} GiB" if room is not None else "memory available unknown")
    return estimate
