"""The model configuration: the architectural hyperparameters as one plain, typed object."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["ModelConfig"]


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
