"""The one metric line format shared by the training program and the SDK.

The training program prints one metric per line::

    #metric validation:bleu=23.456789 step=1000 epoch=2

and the SDK publishes :data:`METRIC_DEFINITIONS`, whose regexes SageMaker applies to the job's log.

:func:`corpus_score` is the one BLEU/chrF computation (sacreBLEU on pre-tokenized text, so
``tokenize='none'`` for BLEU), used by the training program's validation, ``s2s-evaluate``, the
quickstart and the benchmarks. sacreBLEU is imported only when it runs.

Example::

    from s2s_aws.contract.metrics import corpus_score
    bleu, signature = corpus_score(["a b c d"], ["a b c d"])           # (100.0, "nrefs:1|...|tok:none|...")
    chrf, _ = corpus_score(["a b c d"], ["a b c d"], metric="chrf")
"""
from __future__ import annotations

import re
from typing import Sequence

from ..errors import InputError

__all__ = ["METRIC_NAMES", "METRIC_DEFINITIONS", "format_metric", "parse_metric_line", "SCORE_METRICS",
           "corpus_score"]

#: name -> "Maximize" / "Minimize"
METRIC_NAMES: dict[str, str] = {
    "validation:bleu": "Maximize",
    "validation:perplexity": "Minimize",
    "validation:accuracy": "Maximize",
    "train:perplexity": "Minimize",
    "train:accuracy": "Maximize",
}

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"

#: ``MetricDefinitions`` for ``CreateTrainingJob``'s ``AlgorithmSpecification``.
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": name, "Regex": "#metric " + re.escape(name) + "=" + _NUMBER} for name in METRIC_NAMES
]

_LINE = re.compile(r"#metric ([a-z]+:[a-z_]+)=" + _NUMBER + r"(?: step=(\d+))?(?: epoch=(\d+))?")


def format_metric(name: str, value: float, *, step: int | None = None, epoch: int | None = None) -> str:
    """Return the log line for one metric value (no trailing newline)."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRIC_NAMES)}")
    line = f"#metric {name}={float(value):.6f}"
    if step is not None:
        line += f" step={int(step)}"
    if epoch is not None:
        line += f" epoch={int(epoch)}"
    return line


def parse_metric_line(line: str) -> tuple[str, float, int | None, int | None] | None:
    """Parse a metric line: ``(name, value, step, epoch)``, or None when the line holds no metric."""
    m = _LINE.search(line)
    if not m or m.group(1) not in METRIC_NAMES:
        return None
    step = int(m.group(3)) if m.group(3) else None
    epoch = int(m.group(4)) if m.group(4) else None
    return m.group(1), float(m.group(2)), step, epoch


#: the corpus metrics :func:`corpus_score` computes
SCORE_METRICS: tuple[str, ...] = ("bleu", "chrf")


def corpus_score(hypotheses: Sequence[str], references: Sequence[str], *, metric: str = "bleu") -> tuple[float, str]:
    """Corpus BLEU (``tokenize='none'``: the text is pre-tokenized) or chrF, and sacreBLEU's signature.

    ``hypotheses[i]`` is scored against ``references[i]`` (one reference per sentence). Raises
    :class:`InputError` when the lengths differ or ``metric`` is unknown, and
    ``ModuleNotFoundError`` when sacreBLEU is not installed.
    """
    if metric not in SCORE_METRICS:
        raise InputError(f"unknown metric {metric!r}; corpus_score computes {', '.join(SCORE_METRICS)}")
    if len(hypotheses) != len(references):
        raise InputError(f"{len(hypotheses)} hypotheses for {len(references)} references; "
                         "give one hypothesis per reference sentence, line-aligned")
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"{metric} needs sacreBLEU: pip install sacrebleu ({e})", name=e.name) from e
    scorer = BLEU(tokenize="none") if metric == "bleu" else CHRF()
    score = scorer.corpus_score(list(hypotheses), [list(references)])
    return float(score.score), str(scorer.get_signature())
