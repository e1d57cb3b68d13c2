"""The sequence-to-sequence model: an encoder, a decoder, weight initialisation.

Example::

    cfg = ModelConfig(src_vocab_size=100, trg_vocab_size=120, rnn_num_hidden=64,
                      num_embed_source=32, num_embed_target=32)
    model = Seq2Seq(cfg)
    logits, attention = model(src, src_lengths, trg_in)     # (B, T, V), (B, T, S)
"""
from __future__ import annotations

import logging
import math

import torch
from torch import Tensor, nn

from .cnn import ConvDecoder, ConvEncoder
from .config import ModelConfig
from .decoder import RNNDecoder
from .encoder import EncoderOutput, RNNEncoder
from .transformer import TransformerDecoder, TransformerEncoder, build_embeddings

logger = logging.getLogger(__name__)

__all__ = ["Seq2Seq", "init_weights"]


class Seq2Seq(nn.Module):
    """Encoder-decoder with attention (RNN or CNN on either side, or a transformer on both)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        if "transformer" in (cfg.encoder_type, cfg.decoder_type):
            self._build_transformer(cfg)
            return
        if cfg.encoder_type == "rnn":
            self.encoder: nn.Module = RNNEncoder(cfg)
        elif cfg.encoder_type == "cnn":
            self.encoder = ConvEncoder(cfg)
        else:
            raise ValueError(f"unknown encoder_type {cfg.encoder_type!r}; allowed: rnn, cnn")
        memory_dim = self.encoder.output_dim
        if cfg.decoder_type == "rnn":
            self.decoder: nn.Module = RNNDecoder(cfg, memory_dim)
        elif cfg.decoder_type == "cnn":
            self.decoder = ConvDecoder(cfg, memory_dim)
        else:
            raise ValueError(f"unknown decoder_type {cfg.decoder_type!r}; allowed: rnn, cnn")
        init_weights(self, cfg.weight_init_type, cfg.weight_init_scale, cfg.xavier_factor_type)

    def _build_transformer(self, cfg: ModelConfig) -> None:
        if cfg.encoder_type != cfg.decoder_type:
            raise ValueError(f"encoder_type={cfg.encoder_type} and decoder_type={cfg.decoder_type} cannot be "
                             "mixed: the transformer runs on both sides only")
        if cfg.transformer_model_size % cfg.transformer_attention_heads:
            raise ValueError(f"transformer_model_size={cfg.transformer_model_size} is not divisible by "
                             f"transformer_attention_heads={cfg.transformer_attention_heads}")
        src_embed, trg_embed = build_embeddings(cfg)
        self.encoder = TransformerEncoder(cfg, src_embed)
        self.decoder = TransformerDecoder(cfg, self.encoder.output_dim, trg_embed)
        if cfg.weight_tying_type in ("trg_softmax", "src_trg_softmax"):
            self.decoder.output.weight = trg_embed.weight
        init_weights(self, cfg.weight_init_type, cfg.weight_init_scale, cfg.xavier_factor_type)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encode ``src`` ``(B, S)`` and cache what every decoding step reuses."""
        return self.decoder.prepare(self.encoder(src, src_lengths))

    def forward(self, src: Tensor, src_lengths: Tensor, trg_in: Tensor,
                select: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits ``(B, T, V)`` and attention weights ``(B, T, S)``.

        With a boolean ``select`` ``(B, T)`` (e.g. the non-padding target positions) the logits are
        ``(N, V)`` for the selected positions only, which skips the vocabulary projection of padding.
        """
        return self.decoder(self.encode(src, src_lengths), trg_in, select)

    def init_state(self, enc: EncoderOutput) -> Tensor:
        return self.decoder.init_state(enc)

    def step(self, prev: Tensor, state: Tensor, enc: EncoderOutput) -> tuple[Tensor, Tensor, Tensor]:
        """One decoding step: logits ``(B, V)``, new state, attention ``(B, S)``."""
        return self.decoder.step(prev, state, enc)

    def reorder_state(self, state: Tensor, index: Tensor) -> Tensor:
        return self.decoder.reorder_state(state, index)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _fans(weight: Tensor) -> tuple[int, int]:
    receptive = int(math.prod(weight.shape[2:])) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@torch.no_grad()
def init_weights(model: nn.Module, kind: str = "xavier", scale: float = 2.34, factor_type: str = "in") -> None:
    """Initialise every weight matrix; biases start at zero (LSTM forget-gate biases at one).

    ``xavier``: uniform in ``[-s, s]`` with ``s = sqrt(scale / factor)`` where factor is fan-in,
    fan-out or their mean (``xavier_factor_type``), as MXNet's Xavier initializer; ``uniform``:
    uniform in ``[-scale, scale]``.
    """
    if kind not in ("xavier", "uniform"):
        raise ValueError(f"unknown weight_init_type {kind!r}; allowed: xavier, uniform")
    if factor_type not in ("in", "out", "avg"):
        raise ValueError(f"unknown xavier_factor_type {factor_type!r}; allowed: in, out, avg")
    for name, p in model.named_parameters():
        if p.dim() < 2:
            p.zero_()
            continue
        if kind == "uniform":
            bound = abs(scale)
        else:
            fan_in, fan_out = _fans(p)
            factor = {"in": fan_in, "out": fan_out, "avg": (fan_in + fan_out) / 2.0}[factor_type]
            bound = math.sqrt(abs(scale) / max(factor, 1.0))
        p.uniform_(-bound, bound)
    for module in model.modules():
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()
        if isinstance(module, nn.LSTM):
            for name, p in module.named_parameters():
                if name.startswith("bias_ih"):
                    h = p.shape[0] // 4
                    p[h:2 * h].fill_(1.0)
