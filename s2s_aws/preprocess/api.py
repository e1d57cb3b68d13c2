"""The :func:`preprocess` entry point: checks its arguments, drives the passes over the chunks (see
:mod:`.work`) and writes the outputs in order, all renamed into place at the end."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

from ..contract import layout, vocab as vocab_mod
from ..contract._files import create_temp_beside
from ..errors import InputError
from . import work
from .chunks import _aligned_chunks
from .ranking import _bytes_keys, _rank, _vocab_ids
from .runner import _Runner
from .summary import PreprocessSummary, ProgressFn, SplitStats, _Progress, untokenized_warnings
from .tokens import _SideIndex

__all__ = ["preprocess", "OUTPUT_FILES", "DEFAULT_CHUNK_BYTES"]

logger = logging.getLogger("s2s_aws.preprocess")

#: the four files written into the output directory
OUTPUT_FILES = layout.PREP_FILES
#: bytes of whole lines per unit of work
DEFAULT_CHUNK_BYTES = 1 << 20


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _default_workers() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def preprocess(
    train_source: str | os.PathLike,
    train_target: str | os.PathLike,
    val_source: str | os.PathLike | None = None,
    val_target: str | os.PathLike | None = None,
    *,
    output_dir: str | os.PathLike = ".",
    num_words_source: int = 50000,
    num_words_target: int = 50000,
    min_count_source: int = 1,
    min_count_target: int = 1,
    single_vocab: bool = False,
    vocab_source_json: str | os.PathLike | None = None,
    vocab_target_json: str | os.PathLike | None = None,
    workers: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Optional[ProgressFn] = None,
    subwords: str | None = None,
    vocab_size: int = 8000,
    subword_model: str = "unigram",
) -> PreprocessSummary:
    """Preprocess a parallel corpus into ``train.rec``, ``val.rec``, ``vocab.src.json``, ``vocab.trg.json``.

    ``val_source``/``val_target`` go together; without them no ``val.rec`` is written. With
    ``single_vocab`` one vocabulary is counted over both training files (``num_words_source`` and
    ``min_count_source`` apply) and written twice. ``vocab_*_json`` reuse existing vocabularies instead of
    building them (with ``single_vocab``, one given file serves both sides). ``workers`` defaults to the
    usable CPUs (at most 8). ``progress`` receives a status line every few seconds on long inputs.

    Every output is written to a temporary file and renamed into place only when all of them are
    complete, so a failure leaves the output directory as it was. Raises :class:`InputError` for bad
    arguments, missing files or mismatched line counts, :class:`FormatError` for unreadable inputs.
    """
    if subwords is not None:
        return _preprocess_subwords(
            train_source, train_target, val_source, val_target, output_dir=output_dir, subwords=subwords,
            vocab_size=vocab_size, subword_model=subword_model, workers=workers, chunk_bytes=chunk_bytes,
            progress=progress)
    started = time.monotonic()
    _check_count("num_words_source", num_words_source, 0)
    _check_count("num_words_target", num_words_target, 0)
    _check_count("min_count_source", min_count_source, 1)
    _check_count("min_count_target", min_count_target, 1)
    _check_count("chunk_bytes", chunk_bytes, 1)
    workers = _default_workers() if workers is None else _check_count("workers", workers, 1)
    if (val_source is None) != (val_target is None):
        raise InputError("give both the validation source and target files (-vs and -vt), or neither")
    paths = {"train source": Path(train_source), "train target": Path(train_target)}
    if val_source is not None and val_target is not None:
        paths.update({"validation source": Path(val_source), "validation target": Path(val_target)})
    for what, path in paths.items():
        if not path.is_file():
            raise InputError(f"{what} file {path} does not exist or is not a file; check the path")
    out_dir = Path(output_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the output directory {out_dir} ({e.strerror}); choose another "
                         "--output-dir") from None
    if single_vocab and (vocab_source_json is None) != (vocab_target_json is None):
        vocab_source_json = vocab_target_json = vocab_source_json or vocab_target_json
    report = _Progress(progress)

    src_vocab = vocab_mod.load_vocab(vocab_source_json) if vocab_source_json is not None else None
    trg_vocab = vocab_mod.load_vocab(vocab_target_json) if vocab_target_json is not None else None
    count = (src_vocab is None or single_vocab and trg_vocab is None,
             trg_vocab is None or single_vocab and src_vocab is None)

    tmp_paths: list[Path] = []

    def tmp_for(name: str) -> Path:
        fd, tmp = create_temp_beside(out_dir / name)
        os.close(fd)
        tmp_paths.append(Path(tmp))
        return Path(tmp)

    ok = False
    spill_dir: str | None = None
    runner = _Runner(workers)
    # worker processes read plain inputs themselves and hand back records as files (no pipe copies)
    via_files = runner.workers > 1

    def out_file(i: int, label: str) -> Optional[str]:
        return os.path.join(spill_dir, f"{label}-{i}.rec") if via_files and spill_dir else None

    try:
        final: dict[str, tuple[Path, Path]] = {}
        tmp = tmp_for(layout.TRAIN_FILE)
        spill_dir = tempfile.mkdtemp(prefix=".s2s-preprocess-", dir=out_dir)
        train_pairs = _aligned_chunks(paths["train source"], paths["train target"], chunk_bytes, "train", report,
                                      slices=via_files)
        if any(count):
            # pass 1: tokenize once, count, spill local ids; build the vocabularies; pass 2: encode
            spills = []
            tasks = ((s, t, os.path.join(spill_dir, f"{i}.npy")) for i, (s, t) in enumerate(train_pairs))
            for i, pid in enumerate(runner.map(work._scan_pair, tasks)):
                spills.append((os.path.join(spill_dir, f"{i}.npy"), pid, out_file(i, "train")))
            tables = runner.broadcast(work._flush_index)
            # merge the workers' tables (numpy), rank, and map every worker's local ids to vocabulary ids
            merged = (_SideIndex(),) if single_vocab else (_SideIndex(), _SideIndex())
            global_ids = {pid: [merged[side % len(merged)].merge(table) for side, table in enumerate(parts)]
                          for pid, parts in tables}
            del tables
            to_vocab: list = [None, None]  # per side: merged id -> vocabulary id
            if single_vocab:
                src_vocab, to_vocab[0] = _rank(merged[0], num_words_source, min_count_source)
                trg_vocab, to_vocab[1] = src_vocab, to_vocab[0]
            else:
                if src_vocab is None:
                    src_vocab, to_vocab[0] = _rank(merged[0], num_words_source, min_count_source)
                if trg_vocab is None:
                    trg_vocab, to_vocab[1] = _rank(merged[1], num_words_target, min_count_target)
            for side, v in enumerate((src_vocab, trg_vocab)):
                if to_vocab[side] is None:  # a given vocabulary
                    to_vocab[side] = _vocab_ids(merged[side % len(merged)].tokens(), v)
            runner.broadcast(work._set_id_maps, {pid: tuple(to_vocab[side].take(ids) for side, ids in enumerate(parts))
                                            for pid, parts in global_ids.items()})
            del merged, global_ids, to_vocab
            train = _write_records(runner.map(work._encode_spilled, spills), tmp, report, "train")
        else:
            runner.broadcast(work._set_vocabs, _bytes_keys(src_vocab), _bytes_keys(trg_vocab))
            tasks = ((s, t, out_file(i, "train")) for i, (s, t) in enumerate(train_pairs))
            train = _write_records(runner.map(work._encode_chunk, tasks), tmp, report, "train")
        assert src_vocab is not None and trg_vocab is not None
        final["train"] = (tmp, out_dir / layout.TRAIN_FILE)
        if train.pairs == 0:
            raise InputError(f"no usable training pairs: every line of {paths['train source']} or "
                             f"{paths['train target']} is blank ({train.skipped} skipped); check the files")
        val = None
        if "validation source" in paths:
            tmp = tmp_for(layout.VALIDATION_FILE)
            if any(count):
                runner.broadcast(work._set_vocabs, _bytes_keys(src_vocab), _bytes_keys(trg_vocab))
            val_pairs = _aligned_chunks(paths["validation source"], paths["validation target"], chunk_bytes,
                                        "validation", report, slices=via_files)
            tasks = ((s, t, out_file(i, "val")) for i, (s, t) in enumerate(val_pairs))
            val = _write_records(runner.map(work._encode_chunk, tasks), tmp, report, "validation")
            final["val"] = (tmp, out_dir / layout.VALIDATION_FILE)
        for side, v, name in (("src", src_vocab, layout.SOURCE_VOCAB_FILE),
                              ("trg", trg_vocab, layout.TARGET_VOCAB_FILE)):
            tmp = tmp_for(name)
            vocab_mod.save_vocab(v, tmp)
            final[f"vocab_{side}"] = (tmp, out_dir / name)
        for tmp, target in final.values():
            os.replace(tmp, target)
        ok = True
    finally:
        runner.close(ok=ok)
        for tmp in tmp_paths:
            if tmp.exists():
                tmp.unlink()
        if spill_dir is not None:
            shutil.rmtree(spill_dir, ignore_errors=True)
    summary = PreprocessSummary(
        output_dir=str(out_dir), files={k: str(t) for k, (_, t) in final.items()},
        source_vocab_size=len(src_vocab), target_vocab_size=len(trg_vocab), train=train, val=val,
        seconds=round(time.monotonic() - started, 3), workers=workers,
        vocab_reused={"source": vocab_source_json is not None, "target": vocab_target_json is not None})
    summary.warnings = untokenized_warnings(summary)
    for warning in summary.warnings:
        logger.warning("preprocess: %s", warning)
    logger.info("preprocess: %s", summary.format().replace("\n", "; "))
    return summary


def _preprocess_subwords(train_source, train_target, val_source, val_target, *, output_dir, subwords: str,
                         vocab_size: int, subword_model: str, workers, chunk_bytes: int,
                         progress) -> PreprocessSummary:
    """Train a joint sentencepiece model, write the inputs as pieces, run the word pipeline on them, and
    write ``spm.model`` beside the vocabularies (one shared vocabulary of pieces)."""
    from . import subwords as sw

    if subwords != "sentencepiece":
        raise InputError(f"--subwords must be 'sentencepiece', got {subwords!r}")
    _check_count("vocab_size", vocab_size, 8)
    for what, path in (("train source", train_source), ("train target", train_target)):
        if not Path(path).is_file():
            raise InputError(f"{what} file {path} does not exist or is not a file; check the path")
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = sw.train_model([Path(train_source), Path(train_target)], vocab_size, subword_model,
                           threads=workers or 1)
    piece_dir = tempfile.mkdtemp(prefix=".s2s-pieces-", dir=out_dir)
    fd, model_tmp = create_temp_beside(out_dir / layout.SUBWORD_MODEL_FILE)
    os.close(fd)
    try:
        Path(model_tmp).write_bytes(model)
        encoded = []
        for name, path in (("ts", train_source), ("tt", train_target), ("vs", val_source), ("vt", val_target)):
            if path is None:
                encoded.append(None)
                continue
            if not Path(path).is_file():
                raise InputError(f"input file {path} does not exist or is not a file; check the path")
            dst = Path(piece_dir) / name
            sw.encode_file(model, Path(path), dst)
            encoded.append(dst)
        summary = preprocess(encoded[0], encoded[1], encoded[2], encoded[3], output_dir=out_dir,
                             num_words_source=vocab_size + 64, single_vocab=True, workers=workers,
                             chunk_bytes=chunk_bytes, progress=progress)
        os.replace(model_tmp, out_dir / layout.SUBWORD_MODEL_FILE)
    finally:
        if os.path.exists(model_tmp):
            os.unlink(model_tmp)
        shutil.rmtree(piece_dir, ignore_errors=True)
    summary.files["subword_model"] = str(out_dir / layout.SUBWORD_MODEL_FILE)
    summary.warnings = untokenized_warnings(summary, subwords=True)
    return summary


def _append_file(out: BinaryIO, path: str) -> None:
    """Append the file ``path`` to ``out`` (in-kernel copy where the OS has one) and delete it."""
    with open(path, "rb") as src:
        size = os.fstat(src.fileno()).st_size
        out.flush()
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(src.fileno(), out.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
        except (AttributeError, OSError):  # no copy_file_range (not Linux, some file systems)
            pass
        if copied < size:
            src.seek(copied)
            out.seek(0, os.SEEK_END)
            shutil.copyfileobj(src, out, 1 << 20)
        else:
            out.seek(0, os.SEEK_END)
    os.unlink(path)


def _write_records(results: Iterator[tuple["bytes | str", dict[str, int]]], out_path: Path, report: _Progress,
                   label: str) -> SplitStats:
    """Write encoded chunks (bytes, or files to append) in order to ``out_path``; return the split's counters."""
    stats = SplitStats()
    with open(out_path, "wb") as out:
        for data, chunk_stats in results:
            if isinstance(data, str):
                _append_file(out, data)
            else:
                out.write(data)
            stats.add(chunk_stats)
            report(lambda: f"writing {label} records: {stats.pairs:,} pairs")
    return stats
