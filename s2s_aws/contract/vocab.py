"""Vocabularies: ``{token: id}`` JSON objects with the contract's rules.

- Special ids: ``<pad>`` = 0, ``<unk>`` = 1, ``<s>`` = 2, ``</s>`` = 3; words follow from id 4.
- Words with count >= ``min_count``, ordered by count descending, ties broken by the word in
  *descending* code-point order; the first ``num_words`` are kept (up to ``num_words + 4`` entries).
- A corpus token spelled like a special symbol keeps the special id (it is not counted as a word).
- Files are UTF-8 JSON with non-ASCII kept as is, written atomically.

Example::

    from s2s_aws.contract import vocab
    v = vocab.build_vocab(vocab.count_tokens(["a b b", "c"]), num_words=2)
    assert v == {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "b": 4, "c": 5}
    assert vocab.encode_tokens(["b", "zzz"], v) == [4, vocab.UNK_ID]
"""
from __future__ import annotations

import json
from json.encoder import encode_basestring  # type: ignore[attr-defined]
import logging
import os
from collections import Counter
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from ..errors import FormatError, InputError
from ._files import write_text_atomic
from .layout import BOS, BOS_ID, EOS, EOS_ID, PAD, PAD_ID, SPECIALS, UNK, UNK_ID

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "PAD_ID", "UNK_ID", "BOS_ID", "EOS_ID", "PAD", "UNK", "BOS", "EOS", "SPECIALS",
    "count_tokens", "build_vocab", "build_vocab_bytes", "rank_order", "load_vocab", "save_vocab", "id_to_token",
    "encode_tokens",
    "validate_vocab", "write_text_atomic",
]

logger = logging.getLogger(__name__)

# the special ids and symbols (PAD_ID .. EOS, SPECIALS) are defined in .layout and re-exported here


def count_tokens(lines: Iterable[str]) -> Counter:
    """Count whitespace-separated tokens over ``lines``."""
    counts: Counter = Counter()
    for line in lines:
        counts.update(line.split())
    return counts


def build_vocab(counts: Mapping[str, int], num_words: int = 50000, min_count: int = 1) -> dict[str, int]:
    """Build a vocabulary from token counts (the rules are in the module docstring)."""
    if isinstance(num_words, bool) or not isinstance(num_words, int) or num_words < 0:
        raise InputError(f"num_words must be an integer >= 0, got {num_words!r}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise InputError(f"min_count must be an integer >= 1, got {min_count!r}")
    return _ranked(counts, num_words, min_count, set(SPECIALS), str)


def build_vocab_bytes(counts: Mapping[bytes, int], num_words: int = 50000, min_count: int = 1) -> dict[str, int]:
    """:func:`build_vocab` for counts keyed by the UTF-8 bytes of tokens (decodes only the kept words)."""
    if isinstance(num_words, bool) or not isinstance(num_words, int) or num_words < 0:
        raise InputError(f"num_words must be an integer >= 0, got {num_words!r}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise InputError(f"min_count must be an integer >= 1, got {min_count!r}")
    return _ranked(counts, num_words, min_count, {s.encode() for s in SPECIALS},
                   bytes.decode)


def _ranked(counts: Mapping, num_words: int, min_count: int, specials: set, decode) -> dict[str, int]:  # noqa: ANN001
    """The vocabulary of ``counts`` (str or UTF-8 bytes keys) by :func:`rank_order`.

    UTF-8 byte order equals code-point order, so bytes keys rank exactly like their decoded strings.
    """
    import numpy as np

    words = [w for w in counts if w not in specials] if any(s in counts for s in specials) else list(counts)
    words.sort(reverse=True)  # word descending (code points)
    word_counts = np.fromiter(map(counts.__getitem__, words), dtype=np.int64, count=len(words))
    kept = list(map(words.__getitem__, rank_order(word_counts, np.arange(len(words)), num_words, min_count).tolist()))
    v = {symbol: i for i, symbol in enumerate(SPECIALS)}
    v.update(zip(map(decode, kept) if decode is not str else kept, range(len(SPECIALS), len(SPECIALS) + len(kept))))
    return v


def rank_order(counts: "np.ndarray", descending: "np.ndarray", num_words: int, min_count: int) -> "np.ndarray":
    """The ranking rule, the one implementation (:func:`build_vocab` and ``s2s_aws.preprocess`` use it).

    ``counts[i]`` is the count of word ``i``; ``descending`` holds the indices of the words to rank (the
    special symbols left out) in descending word order (code points; UTF-8 bytes sort the same way).
    Returns the indices of the kept words in id order (ids ``len(SPECIALS)``, ...): the words with count
    >= ``min_count``, by count descending, ties in ``descending`` order, the first ``num_words``.
    """
    import numpy as np

    words = descending[counts.take(descending) >= min_count]
    return words[np.argsort(-counts.take(words), kind="stable")][:num_words]


def validate_vocab(v: object, name: str | None = None) -> dict[str, int]:
    """Check a vocabulary's shape and return it; :class:`FormatError` says what is wrong.

    Keys are strings, ids are distinct integers 0..n-1, and the specials hold ids 0-3.
    """
    if not isinstance(v, dict):
        raise FormatError(f"a vocabulary must be a JSON object {{token: id}}, got {type(v).__name__}",
                          path=name)
    ids = list(v.values())
    if set(map(type, v)) - {str} or set(map(type, ids)) - {int}:
        for token, idx in v.items():
            if not isinstance(token, str) or isinstance(idx, bool) or not isinstance(idx, int):
                raise FormatError(f"entry {token!r}: {idx!r} is not a string token with an integer id",
                                  path=name)
    if len(set(ids)) != len(ids):
        seen: dict[int, str] = {}
        for token, idx in v.items():
            if idx in seen:
                raise FormatError(f"tokens {seen[idx]!r} and {token!r} share id {idx}; ids must be distinct",
                                  path=name)
            seen[idx] = token
    for i, symbol in enumerate(SPECIALS):
        if v.get(symbol) != i:
            raise FormatError(f"special token {symbol!r} must have id {i} (has {v.get(symbol)!r}); "
                              f"build vocabularies with `s2s-aws preprocess`", path=name)
    if ids and (min(ids) < 0 or max(ids) != len(ids) - 1):
        raise FormatError(f"ids must be exactly 0..{len(ids) - 1} with no gaps (found {min(ids)}.."
                          f"{max(ids)}); renumber the vocabulary or rebuild it", path=name)
    return v


def load_vocab(path: str | os.PathLike) -> dict[str, int]:
    """Load and validate a vocabulary JSON file; :class:`FormatError` when it is malformed."""
    label = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FormatError("vocabulary file not found; check the path", path=label) from None
    except IsADirectoryError:
        raise FormatError("is a directory, not a vocabulary JSON file", path=label) from None
    try:
        v = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError(f"not UTF-8 (byte {e.start}); vocabulary files are UTF-8 JSON", path=label) from None
    except json.JSONDecodeError as e:
        raise FormatError(f"not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); a vocabulary is a "
                          "JSON object {token: id}", path=label) from None
    except RecursionError:
        raise FormatError("JSON nested too deeply to read; a vocabulary is a flat JSON object {token: id}",
                          path=label) from None
    except ValueError as e:  # e.g. an integer literal past Python's digit limit
        raise FormatError(f"JSON holds a value that cannot be read ({e}); a vocabulary is a JSON object "
                          "{token: id} with small integer ids", path=label) from None
    return validate_vocab(v, name=label)


def save_vocab(v: dict[str, int], path: str | os.PathLike) -> None:
    """Save a vocabulary as UTF-8 JSON (non-ASCII kept, one entry per line in id order), atomically."""
    validate_vocab(v, name=os.fspath(path))
    # tokens in id order (ids are exactly 0..n-1 once validated; a built vocabulary is already in order)
    tokens = list(v) if list(v.values()) == list(range(len(v))) else id_to_token(v)
    # "  <JSON string literal, non-ASCII kept>: <id>" per line, all in C-level map/join calls
    body = ",\n".join(map("  {}: {}".format, map(encode_basestring, tokens), range(len(tokens))))
    write_text_atomic(path, "{\n" + body + "\n}\n")


def id_to_token(v: Mapping[str, int]) -> list[str]:
    """Return the inverse mapping as a list: ``id_to_token(v)[i]`` is the token with id ``i``."""
    out = [UNK] * (max(v.values()) + 1 if v else 0)
    for token, idx in v.items():
        out[idx] = token
    return out


def encode_tokens(tokens: Sequence[str], v: Mapping[str, int]) -> list[int]:
    """Map tokens to ids; unknown tokens map to :data:`UNK_ID`."""
    get = v.get
    return [get(t, UNK_ID) for t in tokens]
