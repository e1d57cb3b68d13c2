"""The one metric line format shared by the training program and the SDK.

The training program prints one metric per line::

    #metric validation:bleu=23.456789 step=1000 epoch=2

and the SDK publishes :data:`METRIC_DEFINITIONS`, whose regexes SageMaker applies to the job's log.
"""
from __future__ import annotations

import re

__all__ = ["METRIC_NAMES", "METRIC_DEFINITIONS", "format_metric", "parse_metric_line"]

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
