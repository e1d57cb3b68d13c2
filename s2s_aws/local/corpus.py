"""A small English -> German translation corpus generated from templates, for the quickstart.

Sentences say how many things someone has, sees, sells or bought: ``he bought forty two old cars
yesterday`` -> ``er kaufte gestern zwei und vierzig alte autos``. German number words are written
as their parts (``zwei und vierzig`` for *zweiundvierzig*), so every part is a word the model can
learn, and the units-before-tens order plus the moved adverbs give the attention real reordering
to do. Everything is lower-case and tokenized by spaces. The generator is deterministic for a seed
and the held-out test sentences never occur in the training or validation data.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

__all__ = ["number_en", "number_de", "generate_pairs", "write_corpus", "CorpusFiles"]

_EN_UNITS = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
             "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_EN_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_DE_UNITS = ["", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwölf",
             "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn", "achtzehn", "neunzehn"]
_DE_TENS = ["", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig"]

_NOUNS = [("apples", "äpfel"), ("books", "bücher"), ("cats", "katzen"), ("dogs", "hunde"), ("houses", "häuser"),
          ("cars", "autos"), ("birds", "vögel"), ("trees", "bäume"), ("chairs", "stühle"), ("cups", "tassen")]
_ADJECTIVES = [("", ""), ("red", "rote"), ("small", "kleine"), ("old", "alte"), ("new", "neue")]
# (english template, german template); {n} is the number, {x} the (adjective +) noun
_TEMPLATES = [
    ("i have {n} {x}", "ich habe {n} {x}"),
    ("we see {n} {x}", "wir sehen {n} {x}"),
    ("they sell {n} {x}", "sie verkaufen {n} {x}"),
    ("there are {n} {x} here", "hier sind {n} {x}"),
    ("he bought {n} {x} yesterday", "er kaufte gestern {n} {x}"),
]


def number_en(n: int) -> str:
    """English words for 1 <= n <= 999 (``three hundred and forty two``)."""
    if not 1 <= n <= 999:
        raise ValueError(f"n must be in 1..999, got {n}")
    words = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_EN_UNITS[hundreds], "hundred"]
        if rest:
            words.append("and")
    if rest >= 20:
        words.append(_EN_TENS[rest // 10])
        if rest % 10:
            words.append(_EN_UNITS[rest % 10])
    elif rest:
        words.append(_EN_UNITS[rest])
    return " ".join(words)


def number_de(n: int) -> str:
    """German number words for 1 <= n <= 999, split into parts (``drei hundert zwei und vierzig``)."""
    if not 1 <= n <= 999:
        raise ValueError(f"n must be in 1..999, got {n}")
    words = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += ["ein" if hundreds == 1 else _DE_UNITS[hundreds], "hundert"]
    if rest >= 20:
        if rest % 10:
            words += ["ein" if rest % 10 == 1 else _DE_UNITS[rest % 10], "und"]
        words.append(_DE_TENS[rest // 10])
    elif rest:
        words.append(_DE_UNITS[rest])
    return " ".join(words)


def _pair(template: int, n: int, adjective: int, noun: int) -> tuple[str, str]:
    en_t, de_t = _TEMPLATES[template]
    en_adj, de_adj = _ADJECTIVES[adjective]
    en_noun, de_noun = _NOUNS[noun]
    en_x = f"{en_adj} {en_noun}".strip()
    de_x = f"{de_adj} {de_noun}".strip()
    return en_t.format(n=number_en(n), x=en_x), de_t.format(n=number_de(n), x=de_x)


def generate_pairs(num_pairs: int, seed: int = 1, max_number: int = 999) -> list[tuple[str, str]]:
    """``num_pairs`` distinct (english, german) pairs, drawn deterministically from ``seed``."""
    space = len(_TEMPLATES) * (max_number - 1) * len(_ADJECTIVES) * len(_NOUNS)
    if num_pairs > space:
        raise ValueError(f"only {space} distinct sentences exist with max_number={max_number}")
    rng = random.Random(seed)
    seen: set[tuple[int, int, int, int]] = set()
    pairs = []
    while len(pairs) < num_pairs:
        key = (rng.randrange(len(_TEMPLATES)), rng.randint(2, max_number), rng.randrange(len(_ADJECTIVES)),
               rng.randrange(len(_NOUNS)))
        if key in seen:
            continue
        seen.add(key)
        pairs.append(_pair(*key))
    return pairs


@dataclass
class CorpusFiles:
    """Paths of the generated corpus (``train.*``, ``dev.*``, ``test.*``; ``.en`` source, ``.de`` target)."""

    train_source: Path
    train_target: Path
    dev_source: Path
    dev_target: Path
    test_source: Path
    test_target: Path


def write_corpus(directory: str | Path, *, num_train: int = 8000, num_dev: int = 300, num_test: int = 200,
                 seed: int = 1) -> CorpusFiles:
    """Write train/dev/test files (one sentence per line) into ``directory``; the splits are disjoint."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    pairs = generate_pairs(num_train + num_dev + num_test, seed=seed)
    splits = {"train": pairs[:num_train], "dev": pairs[num_train:num_train + num_dev],
              "test": pairs[num_train + num_dev:]}
    paths: dict[str, Path] = {}
    for split, items in splits.items():
        for side, idx in (("source", 0), ("target", 1)):
            path = out / f"{split}.{'en' if idx == 0 else 'de'}"
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(p[idx] + "\n" for p in items), encoding="utf-8")
            tmp.replace(path)
            paths[f"{split}_{side}"] = path
    return CorpusFiles(**paths)
