"""Subword segmentation with the ``sentencepiece`` library for :func:`~s2s_aws.preprocess.preprocess`.

A joint model is trained on a deterministic sample (every k-th non-blank line, at most
``max_sentences``) of both training files, written as :data:`~s2s_aws.contract.layout.SUBWORD_MODEL_FILE`,
and every input file is re-written as space-separated pieces, which the word pipeline then counts
and encodes as usual (pieces never contain whitespace; blank lines stay blank, so pairs stay aligned).
"""
from __future__ import annotations

import gzip
import io
from pathlib import Path

from ..errors import InputError

__all__ = ["MODEL_TYPES", "train_model", "encode_file"]

MODEL_TYPES = ("unigram", "bpe")


def _read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def train_model(paths: list[Path], vocab_size: int, model_type: str = "unigram",
                max_sentences: int = 200_000, threads: int = 1) -> bytes:
    """Train a sentencepiece model on the lines of ``paths``; return the serialized model."""
    import sentencepiece as spm

    if model_type not in MODEL_TYPES:
        raise InputError(f"--subword-model must be one of {', '.join(MODEL_TYPES)}, got {model_type!r}")
    lines = [line for p in paths for line in _read_lines(p) if line.strip()]
    if len(lines) > max_sentences:
        step = len(lines) / max_sentences
        lines = [lines[int(i * step)] for i in range(max_sentences)]
    out = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=out, vocab_size=vocab_size, model_type=model_type,
            hard_vocab_limit=False, input_sentence_size=0, num_threads=max(1, threads),
            unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2)
    except RuntimeError as e:
        raise InputError(f"sentencepiece could not train on the training text ({e}); "
                         "try another --vocab-size") from None
    return out.getvalue()


def encode_file(model: bytes, src: Path, dst: Path) -> None:
    """Write ``src`` as space-separated pieces of ``model`` into ``dst``, line for line."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model)
    lines = _read_lines(src)
    with open(dst, "w", encoding="utf-8") as out:
        for start in range(0, len(lines), 10_000):
            batch = lines[start:start + 10_000]
            for pieces in sp.encode(batch, out_type=str):
                out.write(" ".join(pieces) + "\n")
