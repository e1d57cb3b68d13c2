"""What :func:`~s2s_aws.preprocess.preprocess` reports: per-split counters, the summary, progress lines."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

__all__ = ["SplitStats", "PreprocessSummary", "ProgressFn"]

ProgressFn = Callable[[str], None]


@dataclass
class SplitStats:
    """What was written for one split (train or validation)."""

    pairs: int = 0
    skipped: int = 0
    source_tokens: int = 0
    target_tokens: int = 0
    source_unk: int = 0
    target_unk: int = 0
    max_source_len: int = 0
    max_target_len: int = 0

    def add(self, other: dict[str, int]) -> None:
        for key, value in other.items():
            if key.startswith("max_"):
                setattr(self, key, max(getattr(self, key), value))
            else:
                setattr(self, key, getattr(self, key) + value)

    @property
    def source_unk_rate(self) -> float:
        return self.source_unk / self.source_tokens if self.source_tokens else 0.0

    @property
    def target_unk_rate(self) -> float:
        return self.target_unk / self.target_tokens if self.target_tokens else 0.0


@dataclass
class PreprocessSummary:
    """The result of :func:`preprocess`."""

    output_dir: str
    files: dict[str, str]
    source_vocab_size: int
    target_vocab_size: int
    train: SplitStats
    val: Optional[SplitStats]
    seconds: float
    workers: int
    vocab_reused: dict[str, bool] = field(default_factory=dict)
    #: "the input looks wrong" notes (untokenized corpus), also printed by the CLI
    warnings: list[str] = field(default_factory=list)

    @property
    def max_source_len(self) -> int:
        return max(self.train.max_source_len, self.val.max_source_len if self.val else 0)

    @property
    def max_target_len(self) -> int:
        return max(self.train.max_target_len, self.val.max_target_len if self.val else 0)

    def to_dict(self) -> dict:
        """A JSON-ready dict (for ``--json``)."""
        out = asdict(self)
        for name in ("train", "val"):
            stats = getattr(self, name)
            if stats is not None:
                out[name]["source_unk_rate"] = stats.source_unk_rate
                out[name]["target_unk_rate"] = stats.target_unk_rate
        out["max_source_len"] = self.max_source_len
        out["max_target_len"] = self.max_target_len
        return out

    def format(self) -> str:
        """A short human-readable report."""
        lines = [f"wrote {', '.join(Path(p).name for p in self.files.values())} to {self.output_dir} "
                 f"in {self.seconds:.1f}s ({self.workers} worker{'s' if self.workers != 1 else ''})"]
        for name, stats in (("train", self.train), ("val", self.val)):
            if stats is None:
                continue
            lines.append(f"{name}: {stats.pairs} pairs written, {stats.skipped} skipped (blank side); "
                         f"unknown tokens: source {100 * stats.source_unk_rate:.2f}%, "
                         f"target {100 * stats.target_unk_rate:.2f}%; longest source {stats.max_source_len}, "
                         f"longest target {stats.max_target_len} tokens")
        reused = {k for k, v in self.vocab_reused.items() if v}
        lines.append(f"vocabulary: source {self.source_vocab_size} entries"
                     f"{' (reused)' if 'source' in reused else ''}, target {self.target_vocab_size} entries"
                     f"{' (reused)' if 'target' in reused else ''}")
        return "\n".join(lines)


def untokenized_warnings(summary: "PreprocessSummary", subwords: bool = False) -> list[str]:
    """Warnings when the corpus looks untokenized: about one token per line, a vocabulary nearly as large
    as the number of tokens, or a validation unknown rate above 20 %."""
    out: list[str] = []
    hint = "" if subwords else "; for raw text, use --subwords sentencepiece --vocab-size 8000"
    t = summary.train
    for side, tokens, size, key in (("source", t.source_tokens, summary.source_vocab_size, "source"),
                                    ("target", t.target_tokens, summary.target_vocab_size, "target")):
        if t.pairs >= 20 and tokens / t.pairs < 1.5:
            out.append(f"the training {side} has {tokens / t.pairs:.2f} tokens per line: it looks untokenized{hint}")
        elif not summary.vocab_reused.get(key) and tokens >= 1000 and (size - 4) / tokens > 0.5:
            out.append(f"the {side} vocabulary ({size} entries) is close to the number of training tokens "
                       f"({tokens}): the text looks untokenized{hint}")
    if summary.val is not None:
        for side, rate in (("source", summary.val.source_unk_rate), ("target", summary.val.target_unk_rate)):
            if rate > 0.2:
                out.append(f"{100 * rate:.0f}% of the validation {side} tokens are unknown{hint}")
    return out


class _Progress:
    def __init__(self, fn: Optional[ProgressFn], interval: float = 2.0) -> None:
        self._fn = fn
        self._interval = interval
        self._last = time.monotonic()

    def __call__(self, message: Callable[[], str]) -> None:
        if self._fn is None:
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._fn(message())
