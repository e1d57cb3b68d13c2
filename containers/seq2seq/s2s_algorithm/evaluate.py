"""The evaluation program ``s2s-evaluate``: decode a test set and score it with sacreBLEU.

The SageMaker Pipeline's evaluation step runs it in a processing job; the quality gate reads
``evaluation.json``. The corpus is pre-tokenized, so BLEU uses ``tokenize='none'``.

Example::

    s2s-evaluate --model-dir model.tar.gz --source test.en --reference test.ja --output-dir eval/
    # eval/evaluation.json  {"bleu": 12.3, "signature": "nrefs:1|case:mixed|...", "num_sentences": 500}
    # eval/hypotheses.txt   one translation per source line
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from s2s_aws.contract._files import write_text_atomic
from s2s_aws.contract.metrics import corpus_score
from s2s_aws.contract.model_dir import open_model_dir
from s2s_aws.errors import InputError, S2SError

logger = logging.getLogger(__name__)

__all__ = ["main", "read_lines", "translate_lines", "score_bleu", "evaluate"]


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """Lines of a UTF-8 text file (``.gz`` read transparently; undecodable bytes replaced)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist or is not a file; pass a UTF-8 text file with one sentence per line")
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8", errors="replace", newline=None) as f:
        return [line.rstrip("\n") for line in f]


def translate_lines(translator: Any, lines: Sequence[str], *, beam_size: int | None = None,
                    batch_size: int = 64) -> list[str]:
    """Translate every line (empty lines give empty translations), ``batch_size`` lines per call."""
    hyps = [""] * len(lines)
    todo = [i for i, line in enumerate(lines) if line.split()]
    start_time = time.monotonic()
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        outs = translator.translate([lines[i] for i in chunk], beam_size=beam_size)
        for i, out in zip(chunk, outs):
            hyps[i] = out.target
        done = min(start + batch_size, len(todo))
        if done == len(todo) or (start // batch_size) % 20 == 0:
            logger.info("translated %d/%d sentences (%.1f s)", done, len(todo), time.monotonic() - start_time)
    return hyps


def score_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    """Corpus BLEU of pre-tokenized text (sacreBLEU, ``tokenize='none'``) and its signature."""
    return corpus_score(hypotheses, references)


def evaluate(model_dir: str | os.PathLike[str], source: str | os.PathLike[str],
             reference: str | os.PathLike[str], output_dir: str | os.PathLike[str], *,
             beam_size: int | None = None, batch_size: int = 64, device: str | None = None) -> dict[str, Any]:
    """Decode ``source``, score against ``reference``, write ``evaluation.json`` and ``hypotheses.txt``.

    ``model_dir`` is a model directory or a ``model.tar.gz``. Returns the evaluation dict.
    """
    if batch_size < 1:
        raise InputError(f"--batch-size must be an integer >= 1, got {batch_size}")
    if beam_size is not None and beam_size < 1:
        raise InputError(f"--beam-size must be an integer >= 1, got {beam_size}")
    src = read_lines(source)
    ref = read_lines(reference)
    if len(src) != len(ref):
        raise InputError(f"{source} has {len(src)} lines but {reference} has {len(ref)}; "
                         "the source and reference files must be line-aligned")
    if not src:
        raise InputError(f"{source} is empty; pass a test set with at least one sentence")
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    from .translator import load_translator

    with open_model_dir(model_dir) as mdir:
        translator = load_translator(mdir, device=device)
    logger.info("decoding %d sentences (beam %s, batch %d)", len(src),
                beam_size if beam_size is not None else f"{translator.hp.beam_size} (model default)", batch_size)
    hyps = translate_lines(translator, src, beam_size=beam_size, batch_size=batch_size)
    bleu, signature = score_bleu(hyps, ref)
    result = {"bleu": round(bleu, 6), "signature": signature, "num_sentences": len(src)}
    write_text_atomic(out_dir / "hypotheses.txt", "".join(h + "\n" for h in hyps))
    write_text_atomic(out_dir / "evaluation.json", json.dumps(result, indent=2) + "\n")
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="s2s-evaluate",
                                description="Translate a test set with a trained model and score it with sacreBLEU.")
    p.add_argument("--model-dir", required=True, help="model directory or model.tar.gz")
    p.add_argument("--source", required=True, help="tokenized source sentences, one per line (.gz ok)")
    p.add_argument("--reference", required=True, help="tokenized reference translations, line-aligned")
    p.add_argument("--output-dir", required=True, help="where evaluation.json and hypotheses.txt go")
    p.add_argument("--beam-size", type=int, default=None, help="beam size (default: the model's; 1 = greedy)")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per decode call (default 64)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Console script ``s2s-evaluate``; exit 0 ok, 2 bad input, 1 any other failure."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = evaluate(args.model_dir, args.source, args.reference, args.output_dir,
                          beam_size=args.beam_size, batch_size=args.batch_size, device=args.device)
    except S2SError as e:
        print(f"s2s-evaluate: error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"BLEU = {result['bleu']:.2f} on {result['num_sentences']} sentences ({result['signature']})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
