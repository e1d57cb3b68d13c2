"""The RNN decoder with attention, parallel over target positions in training.

No input feeding: the bottom layer reads the target embeddings only, so each layer is one fused RNN
call over the whole target sequence; attention is then computed for all target positions at once
(``(B, T, S)``). With ``rnn_attention_in_upper_layers`` (and more than one layer) attention reads the
bottom layer and its context is fed to every upper layer (GNMT); otherwise attention reads the top
layer. The output layer is ``tanh(W [h; context])`` followed by the vocabulary projection.

:meth:`RNNDecoder.step` runs the same modules for one position with carried state, so incremental
decoding reproduces the teacher-forced logits exactly.
"""
from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from .attention import build_attention
from .config import ModelConfig
from .encoder import EncoderOutput, rnn_class

logger = logging.getLogger(__name__)

__all__ = ["RNNDecoder", "STATE_INIT_TYPES"]

STATE_INIT_TYPES = ("last", "avg", "zero")


class RNNDecoder(nn.Module):
    """Stacked LSTM/GRU decoder. Its state is one tensor ``(layers, states_per_cell, B, H)``."""

    def __init__(self, cfg: ModelConfig, memory_dim: int):
        super().__init__()
        if cfg.rnn_decoder_state_init not in STATE_INIT_TYPES:
            raise ValueError(f"unknown rnn_decoder_state_init {cfg.rnn_decoder_state_init!r}; "
                             f"allowed: {', '.join(STATE_INIT_TYPES)}")
        rnn = rnn_class(cfg.rnn_cell_type)
        hidden, layers = cfg.rnn_num_hidden, cfg.num_layers_decoder
        self.hidden = hidden
        self.num_layers = layers
        self.num_states = 2 if cfg.rnn_cell_type == "lstm" else 1
        self.attention_in_upper = bool(cfg.rnn_attention_in_upper_layers) and layers > 1
        self.residual_from = cfg.rnn_first_residual_layer if cfg.rnn_residual_connections else None
        self.state_init = cfg.rnn_decoder_state_init

        self.embed = nn.Embedding(cfg.trg_vocab_size, cfg.num_embed_target, padding_idx=0)
        self.embed_dropout = nn.Dropout(cfg.embed_dropout_target)
        upper_in = hidden + memory_dim if self.attention_in_upper else hidden
        self.layers = nn.ModuleList([rnn(cfg.num_embed_target, hidden, batch_first=True)])
        for _ in range(1, layers):
            self.layers.append(rnn(upper_in, hidden, batch_first=True))
        self.hidden_dropout = nn.Dropout(cfg.rnn_decoder_hidden_dropout)
        self.attention = build_attention(cfg.rnn_attention_type, hidden, memory_dim,
                                         int(cfg.rnn_attention_num_hidden or hidden))
        self.bridge = (None if self.state_init == "zero"
                       else nn.Linear(memory_dim, layers * self.num_states * hidden))
        self.output_hidden = nn.Linear(hidden + memory_dim, hidden)
        self.output = nn.Linear(hidden, cfg.trg_vocab_size)

    # -- state -------------------------------------------------------------------------------
    def prepare(self, enc: EncoderOutput) -> EncoderOutput:
        """Cache the attention keys (once per source batch)."""
        enc.cache["keys"] = self.attention.precompute(enc.memory)
        return enc

    def init_state(self, enc: EncoderOutput) -> Tensor:
        batch = enc.memory.shape[0]
        shape = (self.num_layers, self.num_states, batch, self.hidden)
        if self.bridge is None:
            return enc.memory.new_zeros(shape)
        if self.state_init == "last":
            summary = enc.final
        else:  # avg over real positions
            m = enc.mask.unsqueeze(-1).to(enc.memory.dtype)
            summary = (enc.memory * m).sum(1) / m.sum(1).clamp(min=1.0)
        init = torch.tanh(self.bridge(summary))                        # B, L*n*H
        return init.view(batch, self.num_layers, self.num_states, self.hidden).permute(1, 2, 0, 3).contiguous()

    @staticmethod
    def reorder_state(state: Tensor, index: Tensor) -> Tensor:
        return state.index_select(2, index)

    # -- computation -------------------------------------------------------------------------
    def _layer(self, number: int, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        layer = self.layers[number]
        if self.num_states == 2:
            y, (h, c) = layer(x, (state[number, 0].unsqueeze(0).contiguous(),
                                  state[number, 1].unsqueeze(0).contiguous()))
            new = torch.stack([h[0], c[0]])
        else:
            y, h = layer(x, state[number, 0].unsqueeze(0).contiguous())
            new = h
        return y, new

    def _run(self, emb: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor, Tensor]:
        """Decoder over ``(B, T, E)`` embeddings: output-layer input ``(B, T, H)``, new state, weights."""
        keys = enc.cache.get("keys")
        if keys is None:
            keys = self.attention.precompute(enc.memory)
        new_states = []
        x, s = self._layer(0, emb, state)
        new_states.append(s)
        context = weights = None
        if self.attention_in_upper:
            context, weights = self.attention(x, keys, enc.values, enc.mask, enc.lengths)
        for number in range(1, self.num_layers):
            below = x
            inp = self.hidden_dropout(below)
            if context is not None:
                inp = torch.cat([inp, context], dim=-1)
            y, s = self._layer(number, inp, state)
            new_states.append(s)
            x = y + below if self.residual_from is not None and number + 1 >= self.residual_from else y
        if context is None:
            context, weights = self.attention(x, keys, enc.values, enc.mask, enc.lengths)
        hidden = torch.tanh(self.output_hidden(torch.cat([self.hidden_dropout(x), context], dim=-1)))
        return self.hidden_dropout(hidden), torch.stack(new_states), weights

    def forward(self, enc: EncoderOutput, trg_in: Tensor, select: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Teacher forcing over ``trg_in`` ``(B, T)``: logits ``(B, T, V)`` -- or ``(N, V)`` for the
        positions where the boolean ``select`` ``(B, T)`` is True -- and weights ``(B, T, S)``."""
        state = self.init_state(enc)
        hidden, _, weights = self._run(self.embed_dropout(self.embed(trg_in)), state, enc)
        if select is not None:
            hidden = hidden[select]       # the vocabulary projection only where there is a target
        return self.output(hidden), weights

    def step(self, prev: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor, Tensor]:
        """One position: ``prev`` ``(B,)`` -> logits ``(B, V)``, new state, weights ``(B, S)``."""
        emb = self.embed_dropout(self.embed(prev.unsqueeze(1)))
        hidden, state, weights = self._run(emb, state, enc)
        return self.output(hidden[:, 0]), state, weights[:, 0]
