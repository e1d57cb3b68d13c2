"""The RNN encoder and the encoder output shared by every decoder.

The first layer is bidirectional (``rnn_num_hidden / 2`` units per direction); further layers are
unidirectional (``rnn_num_hidden`` units), with residual connections from ``rnn_first_residual_layer``
on when ``rnn_residual_connections`` is set. Every RNN call is one fused cuDNN/oneDNN call over the
padded batch: the backward direction runs forward over each sentence reversed within its own length
(padding stays at the end, where a left-to-right RNN never reads it), which avoids packed sequences
and their slow step-by-step fallback on CPUs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor, nn

from .config import ModelConfig

logger = logging.getLogger(__name__)

__all__ = ["EncoderOutput", "RNNEncoder", "rnn_class", "gather_last", "reverse_padded"]


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


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row of a batch-first ``(B, S, D)`` tensor within its length; padding stays put."""
    steps = x.shape[1]
    pos = torch.arange(steps, device=x.device)[None, :]
    rev = lengths.to(x.device)[:, None] - 1 - pos
    index = torch.where(rev >= 0, rev, pos)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


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
        # layer 1: the two directions of the bidirectional layer
        self.forward_rnn = rnn(cfg.num_embed_source, hidden // 2, batch_first=True)
        self.backward_rnn = rnn(cfg.num_embed_source, hidden // 2, batch_first=True)
        self.layers = nn.ModuleList()     # layers 2.. (unidirectional)
        for _ in range(1, cfg.num_layers_encoder):
            self.layers.append(rnn(hidden, hidden, batch_first=True))
        self.residual_from = cfg.rnn_first_residual_layer if cfg.rnn_residual_connections else None
        self.output_dim = hidden

    def forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """``src`` ``(B, S)`` token ids (padded with 0), ``src_lengths`` ``(B,)`` (>= 1)."""
        steps = src.shape[1]
        x = self.embed_dropout(self.embed(src))
        lengths = src_lengths.to(src.device)
        fwd, _ = self.forward_rnn(x)
        bwd_reversed, _ = self.backward_rnn(reverse_padded(x, lengths))
        x = torch.cat([fwd, reverse_padded(bwd_reversed, lengths)], dim=-1)
        # forward direction's state after the last token, backward direction's after the first
        final = torch.cat([gather_last(fwd, lengths), gather_last(bwd_reversed, lengths)], dim=-1)
        for number, layer in enumerate(self.layers, start=2):
            # causal: padding after the end never reaches a real position
            y, _ = layer(x)
            x = y + x if self.residual_from is not None and number >= self.residual_from else y
        mask = torch.arange(steps, device=src.device)[None, :] < lengths[:, None]
        x = x * mask.unsqueeze(-1).to(x.dtype)
        if len(self.layers) > 0:
            final = gather_last(x, lengths)
        return EncoderOutput(memory=x, values=x, mask=mask, lengths=lengths, final=final)
