"""Translate with a trained model on this machine, without a server or an AWS account.

Behind ``s2s-aws translate --model-dir DIR [--attention-plot out.png]``. torch and the algorithm
package are imported only when a function here runs (``import s2s_aws`` stays light).

Example::

    from s2s_aws.localtranslate import translate_local
    for r in translate_local(["how are you ?"], "prep/model", attention_plot="attention.png"):
        print(r["target"], r.get("attention_plot"))
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable

from .contract.model_dir import open_model_dir
from .errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["translate_local", "open_model_dir", "CHUNK_SENTENCES"]

#: sentences handed to the decoder at a time (progress is reported after each chunk)
CHUNK_SENTENCES = 1024


def translate_local(sentences: Iterable[str], model_dir: str | os.PathLike[str], *,
                    beam_size: int | None = None, attention_plot: str | os.PathLike[str] | None = None,
                    json_output: bool = False,
                    progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Translate tokenized ``sentences`` with the model in ``model_dir`` (folder or ``model.tar.gz``).

    Returns one dict per sentence, in order: ``{"source": ..., "target": ...}``. With
    ``json_output=True`` or ``attention_plot`` the attention ``matrix`` is added (rows: target
    tokens, columns: source tokens); with ``json_output=True`` also ``tokens`` and
    ``source_tokens``. With ``attention_plot`` the heat map of the *first* sentence is written to
    that path (its dict gets ``"attention_plot"``); :class:`InputError` when that sentence's
    translation is empty. ``beam_size=None`` uses the model's ``beam_size``; 1 is greedy.
    ``progress(done, total)`` is called after every :data:`CHUNK_SENTENCES` non-empty sentences.
    Prints nothing.
    """
    sentences = [str(s) for s in sentences]
    if beam_size is not None and int(beam_size) < 1:
        raise InputError(f"beam size must be an integer >= 1, got {beam_size}")
    want_attention = attention_plot is not None or json_output
    with open_model_dir(model_dir) as mdir:
        from s2s_algorithm.translator import load_translator

        translator = load_translator(mdir)
        # empty sentences need no model call: their translation is empty
        todo = [i for i, s in enumerate(sentences) if s.split()]
        outs = []
        for start in range(0, len(todo), CHUNK_SENTENCES):
            chunk = todo[start:start + CHUNK_SENTENCES]
            outs += translator.translate([sentences[i] for i in chunk], beam_size=beam_size,
                                         attention=want_attention)
            if progress is not None:
                progress(start + len(chunk), len(todo))
    by_index = dict(zip(todo, outs))
    results: list[dict[str, Any]] = []
    for i, sentence in enumerate(sentences):
        out = by_index.get(i)
        result: dict[str, Any] = {"source": sentence, "target": out.target if out else ""}
        if json_output:
            result["tokens"] = list(out.tokens) if out else []
            result["source_tokens"] = list(out.source_tokens) if out else sentence.split()
        if want_attention:
            result["matrix"] = out.matrix if out and out.matrix is not None else []
        results.append(result)
    if attention_plot is not None and sentences:
        first = by_index.get(0)
        if first is None or not first.tokens:
            raise InputError("the first sentence has an empty translation (or is empty): there is no attention "
                             "to plot; put a non-empty sentence first or drop --attention-plot")
        from .plot import save_attention_heatmap

        path = save_attention_heatmap(first.source_tokens, first.tokens, first.matrix, attention_plot,
                                      title=f"attention: {_short(sentences[0])}")
        results[0]["attention_plot"] = str(path)
    return results


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
