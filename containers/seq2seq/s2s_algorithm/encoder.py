"""The RNN encoder and the encoder output shared by every decoder.

The first layer is bidirectional (``rnn_num_hidden / 2`` units per direction) and runs over packed
sequences so padding never reaches the backward direction; further layers are unidirectional
(``rnn_num_hidden`` units), with residual connections from ``rnn_first_residual_layer`` on when
``rnn_residual_connections`` is set. Each layer is one fused cuDNN/oneDNN call over the whole batch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .config import ModelConfig

logger = logging.getLogger(__name__)

__all__ = ["EncoderOutput", "RNNEncoder", "rnn_class", "gather_last"]


@dataclass
class EncoderOutput:
    """What a decoder needs from the encoder, batch first.

    ``memory`` ``(B, S, M)`` is what attention scores against; ``values`` ``(B, S, M)`` what contexts
    are made of (the same tensor for the RNN encoder); ``mask`` ``(B, S)`` is True on real tokens;
    ``lengths`` ``(B,)``; ``final`` ``(B, M)`` summarises the source for decoder state init.
    ``cache`` holds decoder-specific tensors derived from the memory (e.g. projected keys).
    """

    memory: Tensor
    values: Tensor
    mask: Tensor
    lengths: Tensor
    final: Tensor
    cache: dict[str, Tensor] = field(default_factory=dict)

    def index_select(self, index: Tensor) -> "EncoderOutput":
        """Rows ``index`` of every tensor (repeat for beams, reorder, drop finished sentences)."""
        kwargs = {f.name: getattr(self, f.name).index_select(0, index)
                  for f in fields(self) if f.name != "cache"}
        return EncoderOutput(**kwargs, cache={k: v.index_select(0, index) for k, v in self.cache.items()})


def rnn_class(cell_type: str) -> type[nn.RNNBase]:
    if cell_type == "lstm":
        return nn.LSTM
    if cell_type == "gru":
        return nn.GRU
    raise ValueError(f"unknown rnn_cell_type {cell_type!r}; allowed: lstm, gru")


def gather_last(x: Tensor, lengths: Tensor) -> Tensor:
    """``x[b, lengths[b] - 1]`` for a batch-first ``(B, S, D)`` tensor."""
    idx = (lengths - 1).clamp(min=0).to(x.device)
    return x[torch.arange(x.shape[0], device=x.device), idx]


class RNNEncoder(nn.Module):
    """Embedding, a bidirectional first layer, unidirectional upper layers."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.rnn_num_hidden % 2:
            raise ValueError(f"rnn_num_hidden must be even (got {cfg.rnn_num_hidden}): the first "
                             "encoder layer is bidirectional with half of it per direction")
        rnn = rnn_class(cfg.rnn_cell_type)
        hidden = cfg.rnn_num_hidden
        self.embed = nn.Embedding(cfg.src_vocab_size, cfg.num_embed_source, padding_idx=0)
        self.embed_dropout = nn.Dropout(cfg.embed_dropout_source)
        self.layers = nn.ModuleList([rnn(cfg.num_embed_source, hidden // 2, batch_first=True,
                                         bidirectional=True)])
        for _ in range(1, cfg.num_layers_encoder):
            self.layers.append(rnn(hidden, hidden, batch_first=True))
        self.residual_from = cfg.rnn_first_residual_layer if cfg.rnn_residual_connections else None
        self.output_dim = hidden

    def forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """``src`` ``(B, S)`` token ids (padded with 0), ``src_lengths`` ``(B,)`` (>= 1)."""
        steps = src.shape[1]
        x = self.embed_dropout(self.embed(src))
        lengths_cpu = src_lengths.detach().to("cpu", torch.int64)
        packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
        out, h_n = self.layers[0](packed)
        x, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
        if isinstance(h_n, tuple):  # LSTM: (h, c)
            h_n = h_n[0]
        final = torch.cat([h_n[0], h_n[1]], dim=-1)           # forward and backward final states
        for number, layer in enumerate(self.layers[1:], start=2):
            # causal: padding after the end never reaches a real position, so no packing needed
            y, _ = layer(x)
            x = y + x if self.residual_from is not None and number >= self.residual_from else y
        mask = torch.arange(steps, device=src.device)[None, :] < src_lengths.to(src.device)[:, None]
        x = x * mask.unsqueeze(-1).to(x.dtype)
        if len(self.layers) > 1:
            final = gather_last(x, src_lengths)
        return EncoderOutput(memory=x, values=x, mask=mask, lengths=src_lengths.to(src.device), final=final)
