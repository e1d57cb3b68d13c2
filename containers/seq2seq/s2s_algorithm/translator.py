"""Load a model directory and translate: the interface of the inference server and the evaluator.

Example::

    from s2s_algorithm.translator import load_translator
    tr = load_translator("/opt/ml/model")
    out = tr.translate(["can you drive a car ?"], beam_size=5, attention=True)
    print(out[0].target, len(out[0].matrix))
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2s_aws.contract.inference import TranslationResult
from s2s_aws.errors import InputError

from .checkpoint import load_state_dict
from .config import ModelConfig
from .decode import translate_ids
from .model import Seq2Seq

logger = logging.getLogger(__name__)

__all__ = ["load_translator", "Translator", "Translation", "vocab_size"]


@dataclass
class Translation:
    """Output ids (no ``</s>``); ``attention`` ``(len(ids), source tokens used)`` when asked, else None.

    The source tokens used are the first ``max_seq_len_source`` (the model reads no more)."""

    ids: list[int]
    attention: np.ndarray | None = None


def vocab_size(vocab: dict[str, int]) -> int:
    """Rows of the embedding for a ``{token: id}`` vocabulary."""
    return max(vocab.values()) + 1 if vocab else 4


class Translator:
    """A loaded model with its vocabularies and hyperparameters."""

    def __init__(self, model: Seq2Seq, hp: Any, src_vocab: dict[str, int], trg_vocab: dict[str, int],
                 device: torch.device, batch_size: int = 64):
        self.model = model.eval()
        self.hp = hp
        self.src_vocab = src_vocab
        self.trg_vocab = trg_vocab
        self.device = device
        self.batch_size = batch_size
        self._trg_tokens = [""] * vocab_size(trg_vocab)
        for token, i in trg_vocab.items():
            self._trg_tokens[i] = token
        self._lock = threading.Lock()   # one decode at a time per model (servers may use threads)

    def translate_ids(self, sources: list[list[int]], *, beam_size: int | None = None,
                      attention: bool = False) -> list[Translation]:
        """Translate source id lists (no ``</s>``); truncated to ``max_seq_len_source``.

        The attention matrix has one column per source id used (at most ``max_seq_len_source``). An
        empty source translates to nothing (no ids, a 0 x 0 matrix) without a model call."""
        beam = int(self.hp.beam_size if beam_size is None else beam_size)
        if beam < 1:
            raise InputError(f"beam_size must be an integer >= 1, got {beam}.")
        max_src = int(self.hp.max_seq_len_source)
        src_size = self.model.cfg.src_vocab_size
        clean: list[list[int]] = []
        for n, ids in enumerate(sources):
            ids = [int(i) for i in ids][:max_src]
            bad = [i for i in ids if i < 0 or i >= src_size]
            if bad:
                raise InputError(f"source {n} has token id {bad[0]}, outside the source vocabulary "
                                 f"(ids 0..{src_size - 1}). Encode sources with this model's vocab.src.json.")
            clean.append(ids)
        nonempty = [n for n, ids in enumerate(clean) if ids]
        out = [Translation(ids=[], attention=np.zeros((0, 0), dtype=np.float32) if attention else None)
               for _ in clean]
        if not nonempty:
            return out
        with self._lock:
            hyps = translate_ids(self.model, [clean[n] for n in nonempty], beam_size=beam,
                                 max_seq_len_target=int(self.hp.max_seq_len_target),
                                 length_penalty_alpha=float(self.hp.length_penalty_alpha),
                                 length_penalty_beta=float(self.hp.length_penalty_beta),
                                 attention=attention, batch_size=self.batch_size, device=self.device)
        for n, hyp in zip(nonempty, hyps):
            matrix = None
            if attention:  # rows: output tokens, columns: the source ids used
                matrix = np.zeros((len(hyp.ids), len(clean[n])), dtype=np.float32)
                att = hyp.attention if hyp.attention is not None else np.zeros((len(hyp.ids), 0))
                matrix[:, :att.shape[1]] = att
            out[n] = Translation(ids=hyp.ids, attention=matrix)
        return out

    def translate(self, sentences: list[str], *, beam_size: int | None = None,
                  attention: bool = False) -> list[TranslationResult]:
        """Translate whitespace-tokenized sentences; unknown words become ``<unk>``.

        Each result has ``target``, ``tokens`` (the target tokens), ``source_tokens`` (the tokens the
        model read) and, with ``attention``, ``matrix`` (``len(tokens)`` rows, ``len(source_tokens)``
        columns).

        Only a sentence's first ``max_seq_len_source`` tokens are read (split no further), so the cost
        of a sentence is bounded whatever its length; ``""`` and whitespace-only sentences translate
        to ``""``."""
        from s2s_aws.contract import vocab as vocab_format

        max_src = int(self.hp.max_seq_len_source)
        source_tokens = [s.split(None, max_src)[:max_src] for s in sentences]
        ids = [vocab_format.encode_tokens(tokens, self.src_vocab) for tokens in source_tokens]
        results = self.translate_ids(ids, beam_size=beam_size, attention=attention)
        out = []
        for tokens_in, res in zip(source_tokens, results):
            tokens = [self._trg_tokens[i] for i in res.ids]
            out.append(TranslationResult(target=" ".join(tokens), tokens=tokens, source_tokens=tokens_in,
                                         matrix=res.attention.tolist() if res.attention is not None else None))
        return out


def load_translator(model_dir: str | Path, device: str | None = None) -> Translator:
    """Load ``model_dir`` (as written by ``s2s-train``) onto ``device`` (default: CUDA when present)."""
    from s2s_aws.contract import model_dir as model_dir_format
    from s2s_aws.contract.hyperparameters import Hyperparameters

    model_dir = Path(model_dir)
    model_dir_format.check_model_dir(model_dir)   # every file there, a format version this code reads
    hp = Hyperparameters.from_strings(model_dir_format.read_hyperparameters(model_dir))
    src_vocab, trg_vocab = model_dir_format.read_vocabularies(model_dir)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = ModelConfig.from_hyperparameters(hp, vocab_size(src_vocab), vocab_size(trg_vocab))
    model = Seq2Seq(cfg)
    model.load_state_dict(load_state_dict(model_dir_format.weights_path(model_dir)))
    model.to(dev).eval()
    logger.info("loaded %s (%d parameters) on %s", model_dir, model.num_parameters(), dev)
    return Translator(model, hp, src_vocab, trg_vocab, dev)
