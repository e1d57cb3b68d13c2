"""Attention of the RNN decoder over the encoder memory, for all target positions at once.

Every attention type takes a query of shape ``(B, T, Q)`` -- the whole target sequence in training,
one step in decoding -- and returns contexts ``(B, T, M)`` and weights ``(B, T, S)``. Anything that
depends on the memory only (projected keys) is computed once per source batch by :meth:`precompute`.

Types (``rnn_attention_type``):

- ``mlp``: Bahdanau, ``v . tanh(W_q q + W_k k)``
- ``dot``: Luong dot product (query and memory projected to ``rnn_attention_num_hidden`` when the
  widths differ from it)
- ``bilinear``: Luong general, ``q . W k``
- ``fixed``: no learned scores: all weight on the last source position (the encoder's last state)
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

__all__ = ["Attention", "MLPAttention", "DotAttention", "BilinearAttention", "FixedAttention",
           "build_attention", "ATTENTION_TYPES"]

ATTENTION_TYPES = ("mlp", "dot", "bilinear", "fixed")


def _masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis of ``(B, T, S)`` scores, with ``mask`` ``(B, S)`` True = valid."""
    scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(scores.dtype)


class Attention(nn.Module):
    """Base class: ``precompute(memory)`` once, then ``forward(query, keys, values, mask, lengths)``."""

    def precompute(self, memory: Tensor) -> Tensor:
        """Keys derived from the memory ``(B, S, M)``; cached for all decoding steps."""
        return memory

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor,
                lengths: Tensor) -> tuple[Tensor, Tensor]:
        weights = _masked_softmax(self.scores(query, keys), mask)
        return torch.bmm(weights, values), weights


class MLPAttention(Attention):
    """Additive (Bahdanau) attention."""

    def __init__(self, query_dim: int, memory_dim: int, num_hidden: int):
        super().__init__()
        self.key_proj = nn.Linear(memory_dim, num_hidden, bias=False)
        self.query_proj = nn.Linear(query_dim, num_hidden, bias=True)
        self.v = nn.Linear(num_hidden, 1, bias=False)

    def precompute(self, memory: Tensor) -> Tensor:
        return self.key_proj(memory)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        q = self.query_proj(query)                                  # B T A
        hidden = (q.unsqueeze(2) + keys.unsqueeze(1)).tanh_()       # B T S A (the sum is not kept)
        return torch.matmul(hidden, self.v.weight[0])               # B T S (a matrix-vector product)


class DotAttention(Attention):
    """Dot-product (Luong) attention; projections only where the widths call for them."""

    def __init__(self, query_dim: int, memory_dim: int, num_hidden: int):
        super().__init__()
        same = query_dim == memory_dim == num_hidden
        self.query_proj = None if same else nn.Linear(query_dim, num_hidden, bias=False)
        self.key_proj = None if same else nn.Linear(memory_dim, num_hidden, bias=False)

    def precompute(self, memory: Tensor) -> Tensor:
        return memory if self.key_proj is None else self.key_proj(memory)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        q = query if self.query_proj is None else self.query_proj(query)
        return torch.bmm(q, keys.transpose(1, 2))


class BilinearAttention(Attention):
    """Bilinear (Luong "general") attention: ``q^T W k``."""

    def __init__(self, query_dim: int, memory_dim: int):
        super().__init__()
        self.key_proj = nn.Linear(memory_dim, query_dim, bias=False)

    def precompute(self, memory: Tensor) -> Tensor:
        return self.key_proj(memory)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(query, keys.transpose(1, 2))


class FixedAttention(Attention):
    """All weight on the last valid source position: the context is the encoder's last state."""

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:  # pragma: no cover - not used
        raise NotImplementedError

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor,
                lengths: Tensor) -> tuple[Tensor, Tensor]:
        batch, steps = query.shape[0], query.shape[1]
        weights = torch.zeros(batch, steps, values.shape[1], dtype=values.dtype, device=values.device)
        last = (lengths - 1).clamp(min=0).to(values.device)
        weights[torch.arange(batch, device=values.device), :, last] = 1.0
        return torch.bmm(weights, values), weights


def build_attention(kind: str, query_dim: int, memory_dim: int, num_hidden: int) -> Attention:
    """The attention module named by ``rnn_attention_type``."""
    if kind == "mlp":
        return MLPAttention(query_dim, memory_dim, num_hidden)
    if kind == "dot":
        return DotAttention(query_dim, memory_dim, num_hidden)
    if kind == "bilinear":
        return BilinearAttention(query_dim, memory_dim)
    if kind == "fixed":
        return FixedAttention()
    raise ValueError(f"unknown rnn_attention_type {kind!r}; allowed: {', '.join(ATTENTION_TYPES)}")
