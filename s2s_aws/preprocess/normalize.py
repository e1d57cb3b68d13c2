"""Text normalisation: make ``bytes.split()`` tokenize exactly like ``str.split()`` on the decoded text."""
from __future__ import annotations

import re

__all__ = ["EXTRA_WHITESPACE", "normalize_chunk"]

#: the whitespace characters of str.split() outside ASCII's " \t\n\r\v\f" (tests check this list
#: against str.isspace over all of Unicode)
EXTRA_WHITESPACE = ("\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_ASCII_EXTRA = bytes.maketrans(b"\x1c\x1d\x1e\x1f", b"    ")
_MULTIBYTE_WS = [c.encode("utf-8") for c in EXTRA_WHITESPACE if ord(c) >= 0x80]
_MULTIBYTE_WS_RE = re.compile(b"|".join(re.escape(b) for b in _MULTIBYTE_WS))


def _has_multibyte_whitespace(chunk: bytes) -> bool:
    """Whether valid UTF-8 ``chunk`` holds a character of :data:`EXTRA_WHITESPACE` above U+007F.

    Exact, and vectorized (about 1 ns per byte, where substring probes cost ~5): U+0085 and U+00A0 are
    ``C2 85``/``C2 A0``, U+1680 is ``E1 9A 80``, U+2000..U+200A, U+2028, U+2029, U+202F are ``E2 80 xx``,
    U+205F is ``E2 81 9F`` and U+3000 is ``E3 80 80``.
    """
    import numpy as np

    a = np.frombuffer(chunk, dtype=np.uint8)
    if a.size < 2:
        return False
    if ((a[:-1] == 0xC2) & ((a[1:] == 0x85) | (a[1:] == 0xA0))).any():
        return True
    if a.size < 3:
        return False
    lead, second, third = a[:-2], a[1:-1], a[2:]
    x80 = a == 0x80
    found = (lead == 0xE3) & x80[1:-1] & x80[2:]
    found |= (lead == 0xE1) & (second == 0x9A) & x80[2:]
    found |= (lead == 0xE2) & (second == 0x81) & (third == 0x9F)
    found |= (lead == 0xE2) & x80[1:-1] & (((third - np.uint8(0x80)) <= 0x0A) | (third == 0xA8)
                                           | (third == 0xA9) | (third == 0xAF))
    return bool(found.any())


def normalize_chunk(chunk: bytes) -> bytes:
    """Return ``chunk`` as valid UTF-8 in which every whitespace character is ASCII whitespace.

    Undecodable bytes become U+FFFD (as ``errors="replace"`` decoding does); the non-ASCII whitespace
    of :data:`EXTRA_WHITESPACE` becomes a space, so ``bytes.split()`` gives the UTF-8 of the tokens
    that ``str.split()`` gives on the decoded text. (U+FFFD is not whitespace, so replacing bytes never
    moves a token boundary.)
    """
    return _normalize(chunk.translate(_ASCII_EXTRA))


def _normalize(chunk: bytes) -> bytes:
    """:func:`normalize_chunk` but leaving ``\\x1c``-``\\x1f`` alone (:func:`_token_bounds` treats them as
    whitespace: one pass over the bytes fewer)."""
    if chunk.isascii():
        return chunk
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        chunk = chunk.decode("utf-8", "replace").encode("utf-8")
    if _has_multibyte_whitespace(chunk):
        chunk = _MULTIBYTE_WS_RE.sub(b" ", chunk)
    return chunk

