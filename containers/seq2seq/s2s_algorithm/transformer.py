"""The Transformer encoder and decoder (``encoder_type=decoder_type=transformer``).

Pre-norm layers (layer normalisation before each sub-layer, dropout on its output, then the residual
sum; a final layer normalisation on top of each stack), embeddings scaled by ``sqrt(model_size)``
plus fixed (sinusoidal) or learned positions. Every attention runs through
``torch.nn.functional.scaled_dot_product_attention``.

Decoding is incremental, with a key/value cache: each decoder layer keeps the keys and values of
its self-attention over the positions decoded so far (:class:`TransformerState`, grown by one
position per step and reordered with the beams), and the cross-attention keys and values are
computed once per sentence by :meth:`TransformerDecoder.prepare` (kept in ``EncoderOutput.cache``,
so they follow ``index_select`` like the rest of the encoder output).

Attention weights: SDPA does not return them, so the *last decoder layer's* cross-attention is
computed explicitly (softmax of the scaled dot products, averaged over heads) where weights are
wanted: at every decoding step (one query per sentence: cheap) and in teacher-forced ``forward`` in
eval mode. In training mode ``forward`` returns zeros for the weights (the training loss never reads
them) so training pays nothing for them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2s_aws.contract.layout import PAD_ID

from .config import ModelConfig
from .encoder import EncoderOutput, gather_last

__all__ = ["TransformerEncoder", "TransformerDecoder", "TransformerState", "sinusoids"]


def sinusoids(length: int, dim: int) -> Tensor:
    """The fixed positional encodings ``(length, dim)`` (sin on even, cos on odd channels)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)[:, : dim // 2]
    return table


class _Embedding(nn.Module):
    """Token embedding times ``sqrt(d)`` plus positions, then dropout."""

    def __init__(self, tokens: nn.Embedding, cfg: ModelConfig, positions: int):
        super().__init__()
        d = cfg.transformer_model_size
        self.tokens = tokens
        self.scale = math.sqrt(d)
        self.learned = cfg.transformer_positional_embedding_type == "learned"
        if self.learned:
            self.positions = nn.Parameter(torch.empty(positions, d))
        else:
            self.register_buffer("table", sinusoids(positions, d), persistent=False)
        self.dropout = nn.Dropout(cfg.transformer_dropout_prepost)
        self.length = positions

    def position_table(self) -> Tensor:
        return self.positions if self.learned else self.table

    def forward(self, ids: Tensor, start: int = 0) -> Tensor:
        """``ids`` ``(B, T)`` at positions ``start .. start + T - 1`` (clamped to the table)."""
        t = ids.shape[1]
        pos = torch.arange(start, start + t, device=ids.device).clamp(max=self.length - 1)
        x = self.tokens(ids) * self.scale + self.position_table()[pos].to(self.tokens.weight.dtype)
        return self.dropout(x)


class _FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, h = cfg.transformer_model_size, cfg.transformer_feed_forward_num_hidden
        self.inner = nn.Linear(d, h)
        self.outer = nn.Linear(h, d)
        self.dropout = nn.Dropout(cfg.transformer_dropout_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.outer(self.dropout(F.relu(self.inner(x))))


class _Attention(nn.Module):
    """Multi-head attention; ``cross`` projects the query from the decoder, keys/values from memory."""

    def __init__(self, cfg: ModelConfig, cross: bool):
        super().__init__()
        d = cfg.transformer_model_size
        self.heads = cfg.transformer_attention_heads
        self.head_dim = d // self.heads
        self.cross = cross
        if cross:
            self.query = nn.Linear(d, d)
            self.key_value = nn.Linear(d, 2 * d)
        else:
            self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.dropout = cfg.transformer_dropout_attention

    def split(self, x: Tensor) -> Tensor:
        """``(B, T, d)`` -> ``(B, H, T, d / H)``."""
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def merge(self, x: Tensor) -> Tensor:
        b, _, t, _ = x.shape
        return self.out(x.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))

    def project_memory(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention keys and values ``(B, H, S, d / H)`` each."""
        k, v = self.key_value(memory).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
               causal: bool = False) -> Tensor:
        p = self.dropout if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)

    def attend_with_weights(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The same attention computed explicitly (eval only): context and weights averaged over heads."""
        scores = torch.matmul(q, k.transpose(-1, -2)).float() / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = torch.matmul(weights.to(v.dtype), v)
        return context, weights.mean(dim=1)


class _EncoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.transformer_model_size
        self.norm_att = nn.LayerNorm(d)
        self.att = _Attention(cfg, cross=False)
        self.norm_ff = nn.LayerNorm(d)
        self.ff = _FeedForward(cfg)
        self.dropout = nn.Dropout(cfg.transformer_dropout_prepost)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        q, k, v = self.att.qkv(self.norm_att(x)).chunk(3, dim=-1)
        x = x + self.dropout(self.att.merge(self.att.attend(self.att.split(q), self.att.split(k),
                                                            self.att.split(v), mask)))
        return x + self.dropout(self.ff(self.norm_ff(x)))


class TransformerEncoder(nn.Module):
    """Self-attention layers over the source."""

    def __init__(self, cfg: ModelConfig, embedding: nn.Embedding):
        super().__init__()
        self.embed = _Embedding(embedding, cfg, cfg.max_seq_len_source + 2)
        self.layers = nn.ModuleList([_EncoderLayer(cfg) for _ in range(cfg.num_layers_encoder)])
        self.norm = nn.LayerNorm(cfg.transformer_model_size)
        self.output_dim = cfg.transformer_model_size

    def forward(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        lengths = lengths.to(src.device)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < lengths[:, None]   # B, S
        att_mask = mask[:, None, None, :]
        x = self.embed(src)
        for layer in self.layers:
            x = layer(x, att_mask)
        x = self.norm(x)
        return EncoderOutput(memory=x, values=x, mask=mask, lengths=lengths, final=gather_last(x, lengths))


class _DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.transformer_model_size
        self.norm_self = nn.LayerNorm(d)
        self.self_att = _Attention(cfg, cross=False)
        self.norm_cross = nn.LayerNorm(d)
        self.cross_att = _Attention(cfg, cross=True)
        self.norm_ff = nn.LayerNorm(d)
        self.ff = _FeedForward(cfg)
        self.dropout = nn.Dropout(cfg.transformer_dropout_prepost)

    def cross(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor, want_weights: bool
              ) -> tuple[Tensor, Tensor | None]:
        q = self.cross_att.split(self.cross_att.query(self.norm_cross(x)))
        if want_weights:
            context, weights = self.cross_att.attend_with_weights(q, k, v, mask)
        else:
            context, weights = self.cross_att.attend(q, k, v, mask), None
        return x + self.dropout(self.cross_att.merge(context)), weights


@dataclass
class TransformerState:
    """Incremental decoding state: every decoder layer's self-attention keys and values so far,
    ``(layers, B, H, steps, d / H)`` each, and the number of positions decoded."""

    keys: Tensor
    values: Tensor
    steps: int


class TransformerDecoder(nn.Module):
    """Causal self-attention, cross-attention over the encoder and feed-forward layers."""

    def __init__(self, cfg: ModelConfig, memory_dim: int, embedding: nn.Embedding):
        super().__init__()
        if memory_dim != cfg.transformer_model_size:
            raise ValueError("the transformer decoder needs a transformer encoder of the same model size")
        self.embed = _Embedding(embedding, cfg, cfg.max_seq_len_target + 3)
        self.layers = nn.ModuleList([_DecoderLayer(cfg) for _ in range(cfg.num_layers_decoder)])
        self.norm = nn.LayerNorm(cfg.transformer_model_size)
        self.output = nn.Linear(cfg.transformer_model_size, cfg.trg_vocab_size)
        self.heads = cfg.transformer_attention_heads
        self.head_dim = cfg.transformer_model_size // self.heads

    def prepare(self, enc: EncoderOutput) -> EncoderOutput:
        """Compute every layer's cross-attention keys/values once: ``cache["cross_k"/"cross_v"]``
        ``(B, layers, H, S, d / H)`` (batch first, so they follow ``enc.index_select``)."""
        if not self.layers:
            return enc
        kv = [layer.cross_att.project_memory(enc.memory) for layer in self.layers]
        cache = dict(enc.cache)
        cache["cross_k"] = torch.stack([k for k, _ in kv], dim=1)
        cache["cross_v"] = torch.stack([v for _, v in kv], dim=1)
        return EncoderOutput(memory=enc.memory, values=enc.values, mask=enc.mask, lengths=enc.lengths,
                             final=enc.final, cache=cache)

    def init_state(self, enc: EncoderOutput) -> TransformerState:
        b = enc.memory.shape[0]
        empty = enc.memory.new_zeros(len(self.layers), b, self.heads, 0, self.head_dim)
        return TransformerState(keys=empty, values=empty, steps=0)

    @staticmethod
    def reorder_state(state: TransformerState, index: Tensor) -> TransformerState:
        return TransformerState(keys=state.keys.index_select(1, index),
                                values=state.values.index_select(1, index), steps=state.steps)

    def forward(self, enc: EncoderOutput, trg_in: Tensor, select: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Logits ``(B, T, V)`` (``(N, V)`` where ``select`` is True), weights ``(B, T, S)``: the last
        layer's cross-attention averaged over heads in eval mode, zeros in training mode."""
        x = self.embed(trg_in)
        mask = enc.mask[:, None, None, :]
        want = not self.training
        weights: Tensor | None = None
        for number, layer in enumerate(self.layers):
            att = layer.self_att
            q, k, v = att.qkv(layer.norm_self(x)).chunk(3, dim=-1)
            x = x + layer.dropout(att.merge(att.attend(att.split(q), att.split(k), att.split(v), causal=True)))
            last = number == len(self.layers) - 1
            x, w = layer.cross(x, enc.cache["cross_k"][:, number], enc.cache["cross_v"][:, number], mask,
                               want and last)
            if w is not None:
                weights = w
            x = x + layer.dropout(layer.ff(layer.norm_ff(x)))
        if weights is None:
            weights = x.new_zeros(()).expand(x.shape[0], x.shape[1], enc.memory.shape[1])
        hidden = self.norm(x)
        if select is not None:
            hidden = hidden[select]
        return self.output(hidden), weights

    def step(self, prev: Tensor, state: TransformerState, enc: EncoderOutput
             ) -> tuple[Tensor, TransformerState, Tensor]:
        """One position with the key/value cache: logits ``(B, V)``, the grown state, the last
        layer's cross-attention ``(B, S)`` averaged over heads."""
        x = self.embed(prev.unsqueeze(1), start=state.steps)          # B, 1, d
        mask = enc.mask[:, None, None, :]
        keys, values = [], []
        weights: Tensor | None = None
        for number, layer in enumerate(self.layers):
            att = layer.self_att
            q, k, v = att.qkv(layer.norm_self(x)).chunk(3, dim=-1)
            k = torch.cat([state.keys[number], att.split(k)], dim=2)
            v = torch.cat([state.values[number], att.split(v)], dim=2)
            keys.append(k)
            values.append(v)
            x = x + layer.dropout(att.merge(att.attend(att.split(q), k, v)))
            last = number == len(self.layers) - 1
            x, w = layer.cross(x, enc.cache["cross_k"][:, number], enc.cache["cross_v"][:, number], mask, last)
            if w is not None:
                weights = w[:, 0]
            x = x + layer.dropout(layer.ff(layer.norm_ff(x)))
        if weights is None:
            weights = x.new_zeros(x.shape[0], enc.memory.shape[1])
        new_state = TransformerState(keys=torch.stack(keys) if keys else state.keys,
                                     values=torch.stack(values) if values else state.values,
                                     steps=state.steps + 1)
        return self.output(self.norm(x[:, 0])), new_state, weights


def build_embeddings(cfg: ModelConfig) -> tuple[nn.Embedding, nn.Embedding]:
    """Source and target token embeddings, shared when ``weight_tying_type=src_trg_softmax``."""
    d = cfg.transformer_model_size
    trg = nn.Embedding(cfg.trg_vocab_size, d, padding_idx=PAD_ID)
    if cfg.weight_tying_type == "src_trg_softmax":
        if cfg.src_vocab_size != cfg.trg_vocab_size:
            raise ValueError(
                f"weight_tying_type=src_trg_softmax needs one vocabulary size on both sides, but the source "
                f"vocabulary has {cfg.src_vocab_size} tokens and the target {cfg.trg_vocab_size}; build a "
                "joint vocabulary, or set weight_tying_type=trg_softmax or none")
        return trg, trg
    return nn.Embedding(cfg.src_vocab_size, d, padding_idx=PAD_ID), trg
