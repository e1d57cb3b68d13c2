"""Upload the three training channels to S3.

A prep directory (what ``s2s_aws.preprocess`` writes) holds ``train.rec``, ``val.rec``,
``vocab.src.json`` and ``vocab.trg.json``; they go to::

    s3://BUCKET/PREFIX/train/train.rec
    s3://BUCKET/PREFIX/validation/val.rec
    s3://BUCKET/PREFIX/vocab/vocab.src.json
    s3://BUCKET/PREFIX/vocab/vocab.trg.json

Every local file is validated *before* anything is uploaded (vocabularies load, the first
RecordIO record of each data file parses). Each object carries its SHA-256 as metadata
(``x-amz-meta-sha256``) and, where the store supports it, as an S3 additional checksum; a file
whose object already has the same size and SHA-256 is skipped. Large files go up as concurrent
multipart uploads (boto3 ``TransferConfig``).

Interrupted uploads leave nothing open behind them: SIGINT and SIGTERM (when no one else handles
SIGTERM) abort the multipart upload in flight and raise :class:`UploadInterrupted` (a
``KeyboardInterrupt``); a process that was SIGKILLed cannot clean up, so every run first aborts the
open multipart uploads of the exact keys it is about to write (left by an earlier run that died).
Two uploads to the same keys at once are not supported: the later one aborts the earlier one's.

Channel subdirectories (``train/*.rec``, ``validation/*.rec``, ``vocab/*.json``) are accepted too.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ._aws import aws_error, is_not_found, join_key
from .contract.layout import CHANNELS as CHANNEL_NAMES
from .contract.layout import RECORDIO_CONTENT_TYPE as CONTENT_TYPE
from .contract.layout import (TRAIN_CHANNEL, TRAIN_FILE, VALIDATION_CHANNEL, VALIDATION_FILE, VOCAB_CHANNEL,
                              VOCAB_CONTENT_TYPE, VOCAB_FILES)
from .errors import FormatError, InputError

logger = logging.getLogger(__name__)

__all__ = ["Channels", "ChannelFile", "find_channel_files", "validate_channel_files", "upload_channels",
           "abort_stale_uploads", "sha256_file", "UploadInterrupted", "CHANNEL_NAMES", "CONTENT_TYPE"]

#: metadata key holding the hex SHA-256 of the object's content
SHA256_METADATA_KEY = "sha256"

_MiB = 1024 * 1024


class UploadInterrupted(KeyboardInterrupt):
    """The upload was stopped by a signal (SIGINT or SIGTERM); the multipart upload in flight was aborted.

    ``signum`` is the signal; the CLI exits with ``128 + signum``.
    """

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        super().__init__(message or f"{signal.Signals(signum).name} received")


@dataclass(frozen=True)
class Channels:
    """S3 URIs of the three channel prefixes (each ends with ``/``) and what the upload did."""

    train: str
    validation: str
    vocab: str
    uploaded: tuple[str, ...] = field(default=(), compare=False)
    skipped: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_prefix(cls, bucket: str, prefix: str = "") -> "Channels":
        """The channel URIs under ``s3://bucket/prefix/`` (for data that is already uploaded)."""
        base = join_key(prefix)
        def uri(name: str) -> str:
            return f"s3://{bucket}/{join_key(base, name)}/"
        return cls(train=uri(TRAIN_CHANNEL), validation=uri(VALIDATION_CHANNEL), vocab=uri(VOCAB_CHANNEL))

    def as_dict(self) -> dict[str, str]:
        return {TRAIN_CHANNEL: self.train, VALIDATION_CHANNEL: self.validation, VOCAB_CHANNEL: self.vocab}


@dataclass(frozen=True)
class ChannelFile:
    channel: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def _pick(root: Path, channel: str, flat_names: tuple[str, ...], pattern: str) -> list[Path]:
    sub = root / channel
    if sub.is_dir():
        found = sorted(p for p in sub.glob(pattern) if p.is_file())
        if found:
            return found
    return [root / n for n in flat_names if (root / n).is_file()]


def find_channel_files(local_dir: str | os.PathLike) -> list[ChannelFile]:
    """The files of each channel in ``local_dir``; InputError naming what is missing."""
    root = Path(local_dir)
    if not root.is_dir():
        raise InputError(f"prep directory {str(root)!r} does not exist or is not a directory; "
                         "run `s2s-aws preprocess` first or pass the directory it wrote")
    files: list[ChannelFile] = []
    train = _pick(root, TRAIN_CHANNEL, (TRAIN_FILE,), "*.rec")
    validation = _pick(root, VALIDATION_CHANNEL, (VALIDATION_FILE, "validation.rec"), "*.rec")
    vocab_dir = root / VOCAB_CHANNEL if (root / VOCAB_CHANNEL).is_dir() else root
    vocab = [vocab_dir / n for n in VOCAB_FILES if (vocab_dir / n).is_file()]
    missing = []
    if not train:
        missing.append(TRAIN_FILE)
    if not validation:
        missing.append(VALIDATION_FILE)
    missing += [n for n in VOCAB_FILES if not (vocab_dir / n).is_file()]
    if missing:
        raise InputError(f"prep directory {str(root)!r} is missing {', '.join(missing)}; it must hold "
                         "train.rec, val.rec, vocab.src.json and vocab.trg.json (run `s2s-aws preprocess`)")
    files += [ChannelFile(TRAIN_CHANNEL, p) for p in train]
    files += [ChannelFile(VALIDATION_CHANNEL, p) for p in validation]
    files += [ChannelFile(VOCAB_CHANNEL, p) for p in vocab]
    return files


def _validate_recordio(path: Path) -> None:
    from .contract import recordio, records

    with open(path, "rb") as f:
        it = recordio.iter_records(f, name=str(path))
        try:
            payload = next(it)
        except StopIteration:
            raise FormatError("holds no records; re-run preprocessing (was the corpus empty?)",
                              path=str(path)) from None
    try:
        records.decode_pair(payload, name=str(path))
    except FormatError as e:
        if e.path is None:
            raise FormatError(f"first record: {e.detail}; re-run preprocessing", path=str(path), offset=0) from e
        raise
    except Exception as e:  # protobuf DecodeError and friends
        raise FormatError(f"first record is not a Record protobuf with source/target ids ({e}); "
                          "re-run preprocessing", path=str(path), offset=0) from e


def validate_channel_files(files: list[ChannelFile]) -> None:
    """Raise FormatError for the first malformed file (nothing has been uploaded yet)."""
    from .contract import vocab

    for cf in files:
        if cf.channel == VOCAB_CHANNEL:
            vocab.load_vocab(cf.path)
        else:
            _validate_recordio(cf.path)
        logger.debug("validated %s", cf.path)


def sha256_file(path: str | os.PathLike, chunk_size: int = 4 * _MiB) -> str:
    """Hex SHA-256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def default_transfer_config(multipart_threshold: int = 64 * _MiB, max_concurrency: int = 8):
    """boto3 ``TransferConfig``: multipart above ``multipart_threshold`` with concurrent parts."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=multipart_threshold, multipart_chunksize=16 * _MiB,
                          max_concurrency=max_concurrency, use_threads=True)


def _remote_sha256(s3: Any, bucket: str, key: str) -> tuple[str | None, int | None]:
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception as e:
        if is_not_found(e):
            return None, None
        raise aws_error(f"checking s3://{bucket}/{key}", e,
                        "check the bucket exists in this region and that you may read it") from e
    return head.get("Metadata", {}).get(SHA256_METADATA_KEY), head.get("ContentLength")


def abort_stale_uploads(s3: Any, bucket: str, keys: list[str], prefix: str = "") -> list[tuple[str, str]]:
    """Abort the open multipart uploads of exactly ``keys`` (left by a run that was killed).

    Lists the uploads under ``prefix`` once (paginated) and aborts those whose key is one of
    ``keys``; uploads of other keys are left alone. Returns the ``(key, upload id)`` pairs aborted.
    A store that refuses the listing or an abort only gets a warning (the bucket's lifecycle rule
    for incomplete uploads is the fallback); the upload itself goes on.
    """
    wanted = set(keys)
    list_prefix = f"{join_key(prefix)}/" if join_key(prefix) else ""
    stale: list[tuple[str, str]] = []
    try:
        pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=list_prefix)
        for page in pages:
            stale += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", []) if u.get("Key") in wanted]
    except Exception as e:
        logger.warning("could not list open multipart uploads under s3://%s/%s (%s); uploads left open by "
                       "an earlier run that was killed are not aborted; allow s3:ListBucketMultipartUploads "
                       "and s3:AbortMultipartUpload, or rely on the bucket's lifecycle rule",
                       bucket, list_prefix, aws_error("listing", e))
        return []
    aborted = []
    for key, upload_id in stale:
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception as e:
            if not (is_not_found(e) or "NoSuchUpload" in str(e)):  # already gone is fine
                logger.warning("could not abort the open multipart upload %s of s3://%s/%s (%s)",
                               upload_id, bucket, key, aws_error("aborting", e))
            continue
        logger.info("aborted a multipart upload left open by an earlier run: s3://%s/%s (%s)",
                    bucket, key, upload_id)
        aborted.append((key, upload_id))
    return aborted


@contextlib.contextmanager
def _sigterm_interrupts():
    """While the upload runs, SIGTERM raises UploadInterrupted like SIGINT raises KeyboardInterrupt.

    Only in the main thread and only where SIGTERM has its default action (nobody else handles
    it); a second SIGTERM during the abort falls back to the default (the process ends).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return

    def on_sigterm(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise UploadInterrupted(signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def upload_channels(s3: Any, local_dir: str | os.PathLike, bucket: str, prefix: str = "", *,
                    transfer_config: Any = None, checksum_algorithm: str | None = "SHA256",
                    force: bool = False, progress: bool = False, stream: TextIO | None = None,
                    extra_args: dict | None = None) -> Channels:
    """Validate and upload the prep directory ``local_dir`` as the three channels.

    ``s3`` is an S3 client (made from the caller's session). ``checksum_algorithm`` adds an S3
    additional checksum (``None`` for S3-compatible stores without it). ``force`` re-uploads
    unchanged files. ``extra_args`` go to every upload (e.g. ``{"ServerSideEncryption": "aws:kms",
    "SSEKMSKeyId": ...}``). Returns the channel URIs and which keys were uploaded or skipped.
    Open multipart uploads of these keys left by an earlier, killed run are aborted first;
    SIGINT/SIGTERM abort the upload in flight and raise :class:`UploadInterrupted`.
    """
    if not bucket:
        raise InputError("no S3 bucket given; pass bucket= (CLI: --bucket or S2S_BUCKET)")
    files = find_channel_files(local_dir)
    validate_channel_files(files)  # before anything goes up

    channels = Channels.from_prefix(bucket, prefix)
    with _sigterm_interrupts():
        return _upload(s3, files, bucket, prefix, channels, transfer_config=transfer_config,
                       checksum_algorithm=checksum_algorithm, force=force, progress=progress,
                       stream=stream, extra_args=extra_args)


def _upload(s3: Any, files: list[ChannelFile], bucket: str, prefix: str, channels: Channels, *,
            transfer_config: Any, checksum_algorithm: str | None, force: bool, progress: bool,
            stream: TextIO | None, extra_args: dict | None) -> Channels:
    from .progress import ProgressBar

    abort_stale_uploads(s3, bucket, [join_key(prefix, cf.channel, cf.name) for cf in files], prefix)
    todo: list[tuple[ChannelFile, str, str, int]] = []
    skipped: list[str] = []
    for cf in files:
        key = join_key(prefix, cf.channel, cf.name)
        digest = sha256_file(cf.path)
        size = cf.path.stat().st_size
        if not force:
            remote_digest, remote_size = _remote_sha256(s3, bucket, key)
            if remote_digest == digest and remote_size == size:
                logger.info("unchanged, skipped: s3://%s/%s", bucket, key)
                skipped.append(f"s3://{bucket}/{key}")
                continue
        todo.append((cf, key, digest, size))

    config = transfer_config or default_transfer_config()
    bar = ProgressBar(sum(t[3] for t in todo), "upload", stream=stream or sys.stderr,
                      enabled=progress and bool(todo))
    uploaded: list[str] = []
    for cf, key, digest, _size in todo:
        args: dict[str, Any] = dict(extra_args or {})
        args["Metadata"] = {**args.get("Metadata", {}), SHA256_METADATA_KEY: digest}
        args.setdefault("ContentType", VOCAB_CONTENT_TYPE if cf.channel == VOCAB_CHANNEL else CONTENT_TYPE)
        if checksum_algorithm:
            args["ChecksumAlgorithm"] = checksum_algorithm
        logger.info("uploading %s -> s3://%s/%s", cf.path, bucket, key)
        try:
            s3.upload_file(str(cf.path), bucket, key, ExtraArgs=args, Config=config, Callback=bar)
        except KeyboardInterrupt as e:  # boto3's transfer manager has aborted the multipart upload
            bar.close()
            signum = getattr(e, "signum", signal.SIGINT)
            raise UploadInterrupted(signum, f"{signal.Signals(signum).name} while uploading {cf.path} to "
                                    f"s3://{bucket}/{key}; its multipart upload was aborted and nothing "
                                    f"partial is visible; run the upload again (files already up "
                                    f"unchanged are skipped)") from e
        except Exception as e:
            bar.close()
            raise aws_error(f"uploading {cf.path} to s3://{bucket}/{key}", e,
                            "check the bucket exists and you may write to it, then run the upload "
                            "again (unchanged files are skipped)") from e
        uploaded.append(f"s3://{bucket}/{key}")
    if todo:
        bar.close()
    return Channels(channels.train, channels.validation, channels.vocab, tuple(uploaded), tuple(skipped))
