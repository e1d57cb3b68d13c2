"""The vocabularies from the merged token tables: ranking words (numpy) and mapping token ids to
vocabulary ids."""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from ..contract import vocab as vocab_mod
from ..contract.layout import SPECIALS, UNK_ID
from .keytable import _LONG_LENGTH
from .tokens import _pack_tokens, _token_bounds

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .tokens import _SideIndex

__all__: list[str] = []


def _rank(index: "_SideIndex", num_words: int, min_count: int) -> tuple[dict[str, int], "np.ndarray"]:
    """The vocabulary of :func:`s2s_aws.contract.vocab.build_vocab` for the tokens of ``index`` and their
    counts: this puts the words (specials left out) in descending byte order with numpy (UTF-8 byte order
    is code-point order) and ranks them with the contract's one rule, :func:`~s2s_aws.contract.vocab.rank_order`.

    Returns the vocabulary and, for each token of ``index``, its id in it (int32; ``<unk>`` for the
    words left out). Only the kept words are turned into strings.
    """
    import numpy as np

    vocab_mod.build_vocab({}, num_words, min_count)  # the same argument checks
    n = index.table.n
    k1, k2, counts = index.table.keys1[:n], index.table.keys2[:n], index.counts[:n]
    ids = np.full(n, UNK_ID, dtype=np.int32)
    keep = np.ones(n, dtype=bool)
    specials = " ".join(SPECIALS).encode() + b"\n"
    s_k1, s_k2, _ = _pack_tokens(specials, *_token_bounds(np.frombuffer(specials, dtype=np.uint8)))
    for special_id, (a, b) in enumerate(zip(s_k1.tolist(), s_k2.tolist())):
        found = np.flatnonzero((k1 == a) & (k2 == b))  # a corpus token spelled like a special
        keep[found], ids[found] = False, special_id    # keeps the special id
    words = np.flatnonzero(keep)
    length = k2.take(words) >> np.uint64(56)
    if (length == _LONG_LENGTH).any():  # tokens over 15 bytes: compare the bytes themselves
        tokens = index.tokens(ids=words)
        words = words[sorted(range(words.size), key=tokens.__getitem__, reverse=True)]
    else:
        # packed tokens sort like their bytes by (first 8 bytes big-endian, next 7 big-endian, length)
        low56 = np.uint64((1 << 56) - 1)
        words = words[np.lexsort((length, (k2.take(words) & low56).byteswap(), k1.take(words).byteswap()))[::-1]]
    order = vocab_mod.rank_order(counts, words, num_words, min_count)
    first = len(SPECIALS)
    ids[order] = np.arange(first, first + order.size, dtype=np.int32)
    v = {symbol: i for i, symbol in enumerate(SPECIALS)}
    v.update(zip(map(bytes.decode, index.tokens(ids=order)), range(first, first + order.size)))
    return v, ids


def _vocab_ids(tokens: list[bytes], v: dict[str, int]) -> "np.ndarray":
    """The id in ``v`` of each token (``<unk>`` when missing), as int32."""
    import numpy as np

    table = _bytes_keys(v)
    return np.fromiter(map(table.get, tokens, itertools.repeat(UNK_ID)), dtype=np.int32,
                       count=len(tokens))


def _bytes_keys(v: dict[str, int]) -> dict[bytes, int]:
    return dict(zip(map(str.encode, v), v.values()))
