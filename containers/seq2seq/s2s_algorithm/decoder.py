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
from .kernels import linear

logger = logging.getLogger(__name__)

__all__ = ["RNNDecoder", "STATE_INIT_TYPES"]

STATE_INIT_TYPES = ("last", "avg", "zero")

#: Largest bottom-layer input-gate table (target vocabulary x gates) kept for decoding, in bytes.
INPUT_TABLE_BYTES = 256 * 2 ** 20


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
        """Cache the attention keys (once per source batch); in inference, also check the decoding
        cache against the parameters here rather than at every step."""
        enc.cache["keys"] = self.attention.precompute(enc.memory)
        if not self.training and not torch.is_grad_enabled():
            self._inference_weights()
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
        """One position: ``prev`` ``(B,)`` -> logits ``(B, V)``, new state, weights ``(B, S)``.

        In inference (eval mode, no autograd) this runs :meth:`_inference_step`, the same arithmetic
        with the per-step overhead taken out; in training mode, the modules themselves."""
        if not self.training and not torch.is_grad_enabled():
            return self._inference_step(prev, state, enc)
        emb = self.embed_dropout(self.embed(prev.unsqueeze(1)))
        hidden, state, weights = self._run(emb, state, enc)
        return self.output(hidden[:, 0]), state, weights[:, 0]

    # -- incremental decoding (inference) -------------------------------------------------------
    def train(self, mode: bool = True) -> "RNNDecoder":
        """Back in training mode the weights will change: drop the decoding cache. (Its key cannot be
        trusted to see every update: fused optimizers write parameters without bumping their version
        counters, which once left validation BLEU decoding with stale weights.)"""
        if mode:
            self.__dict__.pop("_inference_cache", None)
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        """``to()``, ``cuda()``, ``double()``...: new parameter tensors, so the cache (which holds views of
        the old ones) goes too."""
        self.__dict__.pop("_inference_cache", None)
        return super()._apply(fn, *args, **kwargs)

    def _inference_weights(self) -> dict[str, list]:
        """The RNN weights rearranged for one-step cells, cached while in eval mode until a parameter
        is replaced or changed in place (see :meth:`train` for updates the key cannot see).

        For the bottom layer, the input half of the gates depends on the previous token only, so
        ``embed @ W_ih^T + b`` is one row per target word: a table lookup replaces a matrix product
        per step (when the table is at most :data:`INPUT_TABLE_BYTES`). Upper LSTM layers get
        ``[W_ih W_hh]`` as one matrix (one product per step instead of two)."""
        params = [self.embed.weight] + [p for layer in self.layers for p in layer.parameters()]
        key = tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params)
        cached = self.__dict__.get("_inference_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        lstm = self.num_states == 2
        weights: dict[str, list] = {"table": [], "w_x": [], "b_x": [], "w_h": [], "b_h": []}
        with torch.no_grad():
            for number, layer in enumerate(self.layers):
                w_ih, w_hh = layer.weight_ih_l0, layer.weight_hh_l0
                b_ih, b_hh = layer.bias_ih_l0, layer.bias_hh_l0
                # LSTM: both biases go with the input half; GRU keeps b_hh apart (r * (W_hn h + b_hn))
                b_x = b_ih + b_hh if lstm else b_ih
                table = None
                if number == 0:
                    size = self.embed.weight.shape[0] * w_ih.shape[0] * self.embed.weight.element_size()
                    if size <= INPUT_TABLE_BYTES:
                        table = torch.addmm(b_x, self.embed.weight, w_ih.t())
                weights["table"].append(table)
                if lstm and number > 0:
                    weights["w_x"].append(torch.cat([w_ih, w_hh], dim=1).t().contiguous())
                else:
                    weights["w_x"].append(w_ih.t())
                weights["b_x"].append(b_x)
                weights["w_h"].append(w_hh.t())
                weights["b_h"].append(None if lstm else b_hh)
        self.__dict__["_inference_cache"] = (key, weights)
        return weights

    def _cell(self, w: dict[str, list], number: int, x: Tensor | None, gx: Tensor | None, state: Tensor,
              out: Tensor) -> None:
        """One step of layer ``number`` into ``out`` ``(states, B, H)``: input ``x`` or precomputed input
        gates ``gx``; ``w`` from :meth:`_inference_weights`."""
        h = state[number, 0]
        if self.num_states == 2:                                  # LSTM, gates i f g o
            if gx is None and number > 0:
                gates = torch.addmm(w["b_x"][number], torch.cat([x, h], dim=1), w["w_x"][number])
            else:
                if gx is None:
                    gx = torch.addmm(w["b_x"][number], x, w["w_x"][number])
                gates = torch.addmm(gx, h, w["w_h"][number])
            size = self.hidden
            sig = torch.sigmoid(gates)
            cell = torch.tanh(gates[:, 2 * size:3 * size]).mul_(sig[:, :size])
            torch.addcmul(cell, sig[:, size:2 * size], state[number, 1], out=out[1])
            torch.mul(sig[:, 3 * size:], torch.tanh(out[1]), out=out[0])
        else:                                                     # GRU, gates r z n
            if gx is None:
                gx = torch.addmm(w["b_x"][number], x, w["w_x"][number])
            gh = torch.addmm(w["b_h"][number], h, w["w_h"][number])
            size = self.hidden
            rz = torch.sigmoid(gx[:, :2 * size] + gh[:, :2 * size])
            n = torch.tanh(torch.addcmul(gx[:, 2 * size:], rz[:, :size], gh[:, 2 * size:]))
            # h' = (1 - z) n + z h = n + z (h - n)
            torch.addcmul(n, rz[:, size:], h - n, out=out[0])

    def _inference_step(self, prev: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`step` without autograd or dropout: one-step cells, no per-layer state copies."""
        cached = self.__dict__.get("_inference_cache")       # checked once per batch by prepare()
        w = cached[1] if cached is not None else self._inference_weights()
        keys = enc.cache.get("keys")
        if keys is None:
            keys = self.attention.precompute(enc.memory)
        new = torch.empty_like(state)
        table = w["table"][0]
        if table is not None:
            gx = table.index_select(0, prev)
            self._cell(w, 0, None, gx, state, new[0])
        else:
            self._cell(w, 0, self.embed(prev), None, state, new[0])
        x = new[0, 0]
        context = weights = None
        if self.attention_in_upper:
            context, weights = self.attention(x.unsqueeze(1), keys, enc.values, enc.mask, enc.lengths)
            context = context[:, 0]
        for number in range(1, self.num_layers):
            below = x
            inp = below if context is None else torch.cat([below, context], dim=-1)
            self._cell(w, number, inp, None, state, new[number])
            y = new[number, 0]
            x = y + below if self.residual_from is not None and number + 1 >= self.residual_from else y
        if context is None:
            context, weights = self.attention(x.unsqueeze(1), keys, enc.values, enc.mask, enc.lengths)
            context = context[:, 0]
        hidden = linear(torch.cat([x, context], dim=-1), self.output_hidden.weight, self.output_hidden.bias).tanh_()
        return linear(hidden, self.output.weight, self.output.bias), new, weights[:, 0]
