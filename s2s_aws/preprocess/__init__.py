"""Turn a tokenized parallel corpus into the algorithm's four channel files.

A drop-in for the classic ``create_vocab_proto.py``: reads train (and validation) source/target text,
builds ``vocab.src.json`` / ``vocab.trg.json`` from the training files (or reuses given ones), and
writes ``train.rec`` / ``val.rec`` (RecordIO-protobuf, one Record per pair, in input order).

Rules (see CONTRACT.md, "Vocabulary"): lines are UTF-8 (undecodable bytes replaced by U+FFFD), split
on ``\\n``; tokens are split on whitespace exactly as ``str.split()`` does; ``.gz`` inputs (detected by
their magic bytes) are read transparently; a pair with a blank side is skipped and counted (its other
side still counts towards the vocabulary, which is built from the training *files*); unknown tokens
map to ``<unk>`` = 1. A source and target file with different line counts is an error.

How it works (no Python code runs per token or per line; see BENCHMARKS.md, "Preprocessing"): the
training pairs are cut into aligned chunks of whole lines (about 1 MiB of source text, :mod:`.chunks`)
and handed to worker processes (a :class:`concurrent.futures.ProcessPoolExecutor`, :mod:`.runner`; with
``workers=1``, run inline); a worker reads a plain input's chunk itself by offset, and hands encoded
records back as a file that the parent appends with ``copy_file_range``, so no text or records go
through pipes. What a worker does per chunk, and the state it keeps, is in :mod:`.work`.

- Pass 1 (per chunk): normalize the bytes (:func:`normalize_chunk`, :mod:`.normalize`: invalid UTF-8
  replaced, the non-ASCII whitespace of ``str.split`` turned into spaces, both only where present), find
  token boundaries and tokens per line with numpy, pack every token of up to 15 bytes exactly into two
  64-bit words (:mod:`.tokens`), and map the words to dense local ids with a numpy open-addressing hash
  table (:mod:`.keytable`; rarer longer tokens go through a dict). Counts come from ``numpy.bincount``;
  the local ids and line lengths are spilled to a temporary folder beside the outputs.
- The parent (:mod:`.api`) merges the workers' tables (numpy again), ranks the words (:mod:`.ranking`:
  ``numpy.lexsort`` on the packed words, which sort like the bytes) and sends each worker a local-id ->
  vocabulary-id array.
- Pass 2 (per chunk): one ``take`` maps the spilled ids, and
  :func:`s2s_aws.contract.records.encode_pairs_framed` builds the RecordIO/protobuf bytes of the whole
  chunk at once.

The parent writes results in input order; at most ``2 * workers`` chunks are in flight, so memory stays
flat whatever the corpus size (only the token tables grow, with the number of distinct tokens).
Validation pairs, and training pairs when both vocabularies are given, take one pass (tokens that are
new to a worker's table are looked up in the vocabulary once).

Example::

    from s2s_aws.preprocess import preprocess
    summary = preprocess("train.en", "train.ja", "dev.en", "dev.ja", output_dir="prep")
    print(summary.format())
"""
from __future__ import annotations

from .api import DEFAULT_CHUNK_BYTES, OUTPUT_FILES, preprocess
from .normalize import EXTRA_WHITESPACE, normalize_chunk
from .summary import PreprocessSummary, ProgressFn, SplitStats

__all__ = ["preprocess", "PreprocessSummary", "OUTPUT_FILES", "DEFAULT_CHUNK_BYTES", "SplitStats", "ProgressFn",
           "EXTRA_WHITESPACE", "normalize_chunk"]
