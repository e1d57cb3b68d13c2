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
from typing import TYPE_CHECKING, Any, ClassVar

from s2s_aws.contract.hyperparameters import SCHEMA

__all__ = ["ModelConfig", "MODEL_HYPERPARAMETERS", "MemoryEstimate", "count_parameters", "estimate_training_memory",
           "available_memory", "check_model_fits"]

logger = logging.getLogger(__name__)

_GIB = float(1 << 30)


#: The hyperparameters a model is built from, in the order of :meth:`ModelConfig.to_dict` (saved in
#: checkpoints and training info). Their types, defaults and the rnn_attention_num_hidden rule come
#: from the schema (s2s_aws.contract.hyperparameters), declared there once.
MODEL_HYPERPARAMETERS: tuple[str, ...] = (
    "encoder_type", "decoder_type", "num_embed_source", "num_embed_target", "embed_dropout_source",
    "embed_dropout_target", "num_layers_encoder", "num_layers_decoder", "rnn_cell_type", "rnn_num_hidden",
    "rnn_attention_type", "rnn_attention_num_hidden", "rnn_attention_in_upper_layers", "rnn_decoder_state_init",
    "rnn_decoder_hidden_dropout", "rnn_residual_connections", "rnn_first_residual_layer", "cnn_activation_type",
    "cnn_hidden_dropout", "cnn_kernel_width_encoder", "cnn_kernel_width_decoder", "cnn_num_hidden",
    "max_seq_len_source", "max_seq_len_target", "weight_init_type", "weight_init_scale", "xavier_factor_type",
    "transformer_model_size", "transformer_attention_heads", "transformer_feed_forward_num_hidden",
    "transformer_dropout_attention", "transformer_dropout_act", "transformer_dropout_prepost",
    "transformer_positional_embedding_type", "weight_tying_type",
)


def _fields_from_schema(cls: type) -> type:
    """Make ``cls`` a dataclass of the two vocabulary sizes and :data:`MODEL_HYPERPARAMETERS`, each
    with the schema's type and default (None for a name whose default follows another one)."""
    annotations: dict[str, str] = {"src_vocab_size": "int", "trg_vocab_size": "int"}
    for name in MODEL_HYPERPARAMETERS:
        spec = SCHEMA[name]
        follows = spec.default_from is not None
        annotations[name] = spec.annotation + (" | None" if follows and not spec.optional else "")
        setattr(cls, name, spec.default)
    cls.__annotations__ = annotations
    return dataclass(cls)


@_fields_from_schema
class ModelConfig:
    """Everything needed to build a :class:`~s2s_algorithm.model.Seq2Seq` (names as in the contract):
    ``src_vocab_size``, ``trg_vocab_size`` and the hyperparameters in :data:`MODEL_HYPERPARAMETERS`,
    with the schema's defaults (``ModelConfig(src_vocab_size=100, trg_vocab_size=120, rnn_num_hidden=64)``).
    A name whose default follows another (``rnn_attention_num_hidden``) takes that one's value when None."""

    if TYPE_CHECKING:  # the fields, for type checkers (at run time they come from the schema)
        __dataclass_fields__: ClassVar[dict[str, Any]]
        src_vocab_size: int
        trg_vocab_size: int

        def __init__(self, src_vocab_size: int, trg_vocab_size: int, **hyperparameters: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...

    def __post_init__(self) -> None:
        for name in MODEL_HYPERPARAMETERS:
            follows = SCHEMA[name].default_from
            if follows is not None and getattr(self, name) is None:
                setattr(self, name, getattr(self, follows))

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
        if self.encoder_type == "transformer":
            return self.transformer_model_size
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


_DEFAULT_OPTIMIZER: str = SCHEMA["optimizer_type"].default


def estimate_training_memory(cfg: ModelConfig, optimizer_type: str = _DEFAULT_OPTIMIZER,
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
               "rnn_attention_num_hidden", "num_embed_source", "num_embed_target", "transformer_model_size",
               "transformer_feed_forward_num_hidden")


def check_model_fits(hp: Any, src_vocab_size: int, trg_vocab_size: int, *, gpus: int = 0,
                     available: tuple[int, str] | None = None) -> MemoryEstimate:
    """Estimate the training memory of the model ``hp`` describes and raise
    :class:`~s2s_aws.errors.InputError` (exit 2) when it cannot fit in ``available`` (default:
    :func:`available_memory`). Returns the estimate."""
    from s2s_aws.errors import InputError

    cfg = ModelConfig.from_hyperparameters(hp, src_vocab_size, trg_vocab_size)
    try:
        estimate = estimate_training_memory(cfg, getattr(hp, "optimizer_type", _DEFAULT_OPTIMIZER),
                                            getattr(hp, "momentum", None))
    except ValueError as e:   # sizes the model cannot be built with (e.g. tied embeddings, unequal vocabularies)
        raise InputError(f"The model these hyperparameters describe cannot be built: {e}.") from None
    room = available if available is not None else available_memory(gpus)
    if room is not None and estimate.bytes > room[0]:
        parts = {cfg.encoder_type, cfg.decoder_type}
        transformer = "transformer" in parts
        sizes = ", ".join(f"{name}={getattr(cfg, name)}" for name in _SIZE_NAMES
                          if (name.startswith("transformer_") and transformer)
                          or (name.startswith("num_embed_") and not transformer)
                          or (not name.startswith(("rnn_", "cnn_", "transformer_", "num_embed_")))
                          or name[:3] in parts)
        raise InputError(
            f"The model these hyperparameters describe cannot fit: {estimate}, with vocabularies of "
            f"{src_vocab_size:,} source and {trg_vocab_size:,} target tokens; the {room[1]} is "
            f"{room[0] / _GIB:,.1f} GiB. Lower the sizes ({sizes}) or the vocabulary sizes, or train on "
            "an instance with more memory.")
    logger.info("model memory estimate: %s; %s", estimate,
                f"the {room[1]} is {room[0] / _GIB:,.1f} GiB" if room is not None else "memory available unknown")
    return estimate
