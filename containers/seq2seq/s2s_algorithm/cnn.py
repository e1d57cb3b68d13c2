"""Convolutional encoder and decoder (ConvS2S, Gehring et al. 2017).

Token + learned position embeddings, projected to ``cnn_num_hidden``; each layer is dropout, a 1-D
convolution (``cnn_kernel_width_*``; the decoder's is causal), the activation (``glu`` doubles the
convolution's output channels and gates half of them), and a residual connection scaled by
``sqrt(0.5)``. Every decoder layer attends over the encoder (dot product against the memory, contexts
from ``values``). Incremental decoding keeps each decoder layer's last ``kernel - 1`` inputs
(:class:`ConvState`), so a step costs the same at every position.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .encoder import EncoderOutput, gather_last

logger = logging.getLogger(__name__)

__all__ = ["ConvEncoder", "ConvDecoder", "ConvState", "CNN_ACTIVATIONS"]

CNN_ACTIVATIONS = ("glu", "relu", "softrelu", "sigmoid", "tanh")
_SQRT_HALF = math.sqrt(0.5)


def _activate(kind: str, x: Tensor) -> Tensor:
    """Apply the activation over the channel axis of ``(B, C, T)``."""
    if kind == "glu":
        return F.glu(x, dim=1)
    if kind == "relu":
        return F.relu(x)
    if kind == "softrelu":
        return F.softplus(x)
    if kind == "sigmoid":
        return torch.sigmoid(x)
    if kind == "tanh":
        return torch.tanh(x)
    raise ValueError(f"unknown cnn_activation_type {kind!r}; allowed: {', '.join(CNN_ACTIVATIONS)}")


class _ConvBlock(nn.Module):
    """Dropout, convolution (padded left/right as given), activation. ``(B, T, H) -> (B, T, H)``."""

    def __init__(self, hidden: int, kernel: int, activation: str, dropout: float, causal: bool):
        super().__init__()
        if activation not in CNN_ACTIVATIONS:
            raise ValueError(f"unknown cnn_activation_type {activation!r}; allowed: {', '.join(CNN_ACTIVATIONS)}")
        self.activation = activation
        out = 2 * hidden if activation == "glu" else hidden
        self.conv = nn.Conv1d(hidden, out, kernel)
        self.dropout = nn.Dropout(dropout)
        self.pad = (kernel - 1, 0) if causal else ((kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2)

    def forward(self, x: Tensor) -> Tensor:
        y = F.pad(self.dropout(x).transpose(1, 2), self.pad)
        return _activate(self.activation, self.conv(y)).transpose(1, 2)


class _Embedding(nn.Module):
    """Token + position embedding, dropout, projection to the hidden width."""

    def __init__(self, vocab: int, dim: int, max_len: int, hidden: int, dropout: float):
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, hidden)

    def forward(self, ids: Tensor) -> Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device).clamp(max=self.positions.num_embeddings - 1)
        return self.proj(self.dropout(self.tokens(ids) + self.positions(pos)[None]))


class ConvEncoder(nn.Module):
    """Non-causal convolutions over the source."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hidden = cfg.cnn_num_hidden
        self.embed = _Embedding(cfg.src_vocab_size, cfg.num_embed_source, cfg.max_seq_len_source + 2,
                                hidden, cfg.embed_dropout_source)
        self.layers = nn.ModuleList([
            _ConvBlock(hidden, cfg.cnn_kernel_width_encoder, cfg.cnn_activation_type,
                       cfg.cnn_hidden_dropout, causal=False)
            for _ in range(cfg.num_layers_encoder)])
        self.output_dim = hidden

    def forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        lengths = src_lengths.to(src.device)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < lengths[:, None]
        keep = mask.unsqueeze(-1)
        embedded = self.embed(src) * keep
        x = embedded
        for layer in self.layers:
            x = (layer(x) + x) * _SQRT_HALF * keep   # padding stays zero for the next convolution
        values = (x + embedded) * _SQRT_HALF
        return EncoderOutput(memory=x, values=values, mask=mask, lengths=lengths,
                             final=gather_last(x, lengths))


class ConvDecoder(nn.Module):
    """Causal convolutions over the target prefix, with attention in every layer."""

    def __init__(self, cfg: ModelConfig, memory_dim: int):
        super().__init__()
        hidden = cfg.cnn_num_hidden
        self.embed = _Embedding(cfg.trg_vocab_size, cfg.num_embed_target, cfg.max_seq_len_target + 2,
                                hidden, cfg.embed_dropout_target)
        self.layers = nn.ModuleList([
            _ConvBlock(hidden, cfg.cnn_kernel_width_decoder, cfg.cnn_activation_type,
                       cfg.cnn_hidden_dropout, causal=True)
            for _ in range(cfg.num_layers_decoder)])
        self.att_query = nn.ModuleList([nn.Linear(hidden, memory_dim) for _ in self.layers])
        self.att_out = nn.ModuleList([nn.Linear(memory_dim, hidden) for _ in self.layers])
        self.dropout = nn.Dropout(cfg.cnn_hidden_dropout)
        self.output = nn.Linear(hidden, cfg.trg_vocab_size)

    def prepare(self, enc: EncoderOutput) -> EncoderOutput:
        return enc

    def init_state(self, enc: EncoderOutput) -> ConvState:
        """Nothing decoded yet: every layer's window holds the zeros the causal padding puts there."""
        kernel = self.layers[0].conv.kernel_size[0] if len(self.layers) else 1
        hidden = self.embed.proj.out_features
        window = enc.memory.new_zeros(len(self.layers), enc.memory.shape[0], kernel - 1, hidden)
        return ConvState(window=window, steps=0)

    @staticmethod
    def reorder_state(state: ConvState, index: Tensor) -> ConvState:
        return ConvState(window=state.window.index_select(1, index), steps=state.steps)

    def forward(self, enc: EncoderOutput, trg_in: Tensor, select: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Logits ``(B, T, V)`` (``(N, V)`` where ``select`` is True, when given), weights ``(B, T, S)``."""
        embedded = self.embed(trg_in)
        x = embedded
        weights = None
        not_mask = ~enc.mask[:, None, :]
        for layer, q_proj, o_proj in zip(self.layers, self.att_query, self.att_out):
            y = layer(x)
            query = q_proj((y + embedded) * _SQRT_HALF)
            scores = torch.bmm(query, enc.memory.transpose(1, 2)).masked_fill(not_mask, float("-inf"))
            weights = torch.softmax(scores.float(), dim=-1).to(scores.dtype)
            context = torch.bmm(weights, enc.values)
            y = (y + o_proj(context)) * _SQRT_HALF
            x = (y + x) * _SQRT_HALF
        if weights is None:  # no layers: attention-free
            weights = enc.memory.new_zeros(x.shape[0], x.shape[1], enc.memory.shape[1])
        hidden = self.dropout(x)
        if select is not None:
            hidden = hidden[select]
        return self.output(hidden), weights

    def step(self, prev: Tensor, state: ConvState, enc: EncoderOutput) -> tuple[Tensor, ConvState, Tensor]:
        """One position, incrementally: each layer's causal convolution reads its last ``kernel - 1``
        inputs (kept in the state) and the new one, so a step costs the same at every position."""
        position = min(state.steps, self.embed.positions.num_embeddings - 1)
        emb = self.embed
        embedded = emb.proj(emb.dropout(emb.tokens(prev) + emb.positions.weight[position]))   # B, H
        x = embedded
        weights = None
        not_mask = ~enc.mask
        windows = []
        for number, (layer, q_proj, o_proj) in enumerate(zip(self.layers, self.att_query, self.att_out)):
            inp = torch.cat([state.window[number], layer.dropout(x).unsqueeze(1)], dim=1)    # B, k, H
            windows.append(inp[:, 1:])
            y = _activate(layer.activation, layer.conv(inp.transpose(1, 2)))[:, :, 0]       # B, H
            query = q_proj((y + embedded) * _SQRT_HALF)
            scores = torch.bmm(enc.memory, query.unsqueeze(2))[:, :, 0].masked_fill(not_mask, float("-inf"))
            weights = torch.softmax(scores.float(), dim=-1).to(scores.dtype)
            context = torch.bmm(weights.unsqueeze(1), enc.values)[:, 0]
            y = (y + o_proj(context)) * _SQRT_HALF
            x = (y + x) * _SQRT_HALF
        if weights is None:  # no layers: attention-free
            weights = enc.memory.new_zeros(x.shape[0], enc.memory.shape[1])
        window = torch.stack(windows) if windows else state.window
        return self.output(self.dropout(x)), ConvState(window=window, steps=state.steps + 1), weights


@dataclass
class ConvState:
    """Incremental decoding state of :class:`ConvDecoder`: each layer's last ``kernel - 1`` inputs
    ``(layers, B, kernel - 1, H)`` and the number of positions decoded so far."""

    window: Tensor
    steps: int
