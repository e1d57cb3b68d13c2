"""``s2s-aws preprocess`` and ``s2s-aws inspect``: the data commands."""
from __future__ import annotations

import argparse
import json
import logging
import sys

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``preprocess`` and ``inspect`` commands."""
    p = subparsers.add_parser(
        "preprocess", parents=parents,
        help="build vocabularies and RecordIO-protobuf files from a tokenized parallel corpus",
        description="Turn tokenized parallel text (one sentence per line, .gz allowed) into train.rec, "
                    "val.rec, vocab.src.json and vocab.trg.json: the algorithm's three channels. "
                    "A drop-in for the classic create_vocab_proto.py.")
    p.add_argument("-ts", "--train-source", required=True, metavar="FILE", help="training source text")
    p.add_argument("-tt", "--train-target", required=True, metavar="FILE", help="training target text")
    p.add_argument("-vs", "--val-source", metavar="FILE", help="validation source text")
    p.add_argument("-vt", "--val-target", metavar="FILE", help="validation target text")
    p.add_argument("--num-words-source", type=int, default=50000, metavar="N",
                   help="keep the N most frequent source words (default: 50000)")
    p.add_argument("--num-words-target", type=int, default=50000, metavar="N",
                   help="keep the N most frequent target words (default: 50000)")
    p.add_argument("--word-min-count-source", type=int, default=1, metavar="N",
                   help="drop source words seen fewer than N times (default: 1)")
    p.add_argument("--word-min-count-target", type=int, default=1, metavar="N",
                   help="drop target words seen fewer than N times (default: 1)")
    p.add_argument("--single-vocab", action="store_true",
                   help="one vocabulary counted over source and target (source limits apply), written twice")
    p.add_argument("--vocab-source-json", metavar="FILE", help="reuse this source vocabulary instead of building one")
    p.add_argument("--vocab-target-json", metavar="FILE", help="reuse this target vocabulary instead of building one")
    p.add_argument("--output-dir", default=".", metavar="DIR", help="where to write the four files (default: .)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: the usable CPUs, at most 8)")
    p.add_argument("--subwords", choices=["sentencepiece"], default=None,
                   help="for raw (untokenized) text: train a joint sentencepiece model (spm.model, written "
                        "beside the vocabularies) and encode the records as its pieces")
    p.add_argument("--vocab-size", type=int, default=8000, metavar="N",
                   help="sentencepiece vocabulary size with --subwords (default: 8000)")
    p.add_argument("--subword-model", choices=["unigram", "bpe"], default="unigram",
                   help="sentencepiece model type with --subwords (default: unigram)")
    p.set_defaults(func=_preprocess)

    q = subparsers.add_parser(
        "inspect", parents=parents, help="summarize .rec record files and vocabulary .json files",
        description="For RecordIO files: count the records and summarize sequence lengths; with --head N, "
                    "print the first N records (--json: JSON lines {\"source\": [ids], \"target\": [ids]}). "
                    "For vocabulary files: size and special ids. A malformed file exits with code 2.")
    q.add_argument("paths", nargs="+", metavar="PATH", help=".rec or vocabulary .json files")
    q.add_argument("--head", type=int, default=0, metavar="N", help="print the first N records of each .rec file")
    q.set_defaults(func=_inspect)


def _preprocess(args: argparse.Namespace) -> int:
    from ..preprocess import preprocess

    quiet = bool(args.json)

    def progress(message: str) -> None:
        print(f"s2s-aws preprocess: {message}", file=sys.stderr, flush=True)

    summary = preprocess(
        args.train_source, args.train_target, args.val_source, args.val_target,
        output_dir=args.output_dir,
        num_words_source=args.num_words_source, num_words_target=args.num_words_target,
        min_count_source=args.word_min_count_source, min_count_target=args.word_min_count_target,
        single_vocab=args.single_vocab,
        vocab_source_json=args.vocab_source_json, vocab_target_json=args.vocab_target_json,
        workers=args.workers, progress=None if quiet else progress,
        subwords=args.subwords, vocab_size=args.vocab_size, subword_model=args.subword_model,
    )
    for warning in summary.warnings:
        print(f"s2s-aws preprocess: warning: {warning}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(summary.format())
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from ..inspection import dumps_record, format_report, inspect_path, iter_head

    for path in args.paths:
        if args.head > 0:
            for index, record in enumerate(iter_head(path, args.head)):
                if args.json:
                    print(dumps_record(record))
                else:
                    fields = "  ".join(f"{k}: {' '.join(map(str, v))}" for k, v in record.items())
                    print(f"{path} [{index}]  {fields}")
            continue
        report = inspect_path(path)
        print(json.dumps(report, ensure_ascii=False) if args.json else format_report(report))
    return 0
