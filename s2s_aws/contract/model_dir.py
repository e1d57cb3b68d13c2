"""The model directory: what training writes, serving and evaluation read, SageMaker packs.

A model directory (``/opt/ml/model``) is self-contained:

- ``model.pt`` -- the state dict (written and read by the container, which has torch);
- ``hyperparameters.json`` -- the resolved hyperparameters in SageMaker's string form;
- ``vocab.src.json``, ``vocab.trg.json`` -- the vocabularies, copied byte for byte from the vocab channel;
- ``format.json`` -- ``{"format_version": 1, ...}`` (written last: a directory with it is complete).

``model.tar.gz`` holds these files at its root (an archive that wraps them in one folder is read too).
Every file is written atomically (:mod:`._files`), so a reader never sees half a file.

Example::

    from s2s_aws.contract import model_dir
    with model_dir.open_model_dir("model.tar.gz") as d:       # or a folder
        fmt = model_dir.check_model_dir(d)                    # InputError when incomplete or too new
        hp = model_dir.read_hyperparameters(d)                # {"rnn_num_hidden": "512", ...}
        src_vocab, trg_vocab = model_dir.read_vocabularies(d)
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping

from ..errors import InputError
from ._files import atomic_write, write_json_atomic
from .layout import (MODEL_ARCHIVE, MODEL_FILES, MODEL_FORMAT_FILE, MODEL_HYPERPARAMETERS_FILE,
                     MODEL_WEIGHTS_FILE, SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE, VOCAB_FILES)

__all__ = ["FORMAT_VERSION", "MODEL_FILES", "write_model_dir", "check_model_dir", "read_json",
           "read_hyperparameters", "read_vocabularies", "weights_path", "open_model_dir", "pack_model_dir"]

#: the model directory format this code writes and the newest it reads
FORMAT_VERSION = 1


def _write_json(path: Path, value: Any) -> None:
    write_json_atomic(path, value, indent=2, ensure_ascii=False, sort_keys=True)


def write_model_dir(model_dir: str | os.PathLike[str], write_weights: Callable[[IO[bytes]], None],
                    hyperparameters: Mapping[str, str], vocab_dir: str | os.PathLike[str],
                    info: Mapping[str, Any] | None = None) -> Path:
    """Write a complete model directory; returns its path.

    ``write_weights(f)`` writes ``model.pt`` into the open binary file ``f`` (the container passes
    ``torch.save``). The vocabularies are copied byte for byte from ``vocab_dir``; ``info`` adds
    keys to ``format.json``, which is written last.
    """
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    for name in VOCAB_FILES:
        with atomic_write(root / name) as f, open(Path(vocab_dir) / name, "rb") as src:
            shutil.copyfileobj(src, f)
    _write_json(root / MODEL_HYPERPARAMETERS_FILE, dict(hyperparameters))
    with atomic_write(root / MODEL_WEIGHTS_FILE) as f:
        write_weights(f)
    _write_json(root / MODEL_FORMAT_FILE, {"format_version": FORMAT_VERSION, **dict(info or {})})
    return root


def read_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file of the model directory; :class:`InputError` when it does not parse."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError as e:
        raise InputError(f"{p} is not valid JSON ({e}). The model directory is damaged: "
                         "re-create it with s2s-train.") from e


def check_model_dir(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Check that every model file is there and the format is one this code reads; return ``format.json``."""
    root = Path(model_dir)
    missing = [name for name in MODEL_FILES if not (root / name).is_file()]
    if missing:
        raise InputError(f"model directory {root} lacks {', '.join(missing)}. Point at a folder "
                         f"(or the extracted {MODEL_ARCHIVE}) written by s2s-train; it holds {', '.join(MODEL_FILES)}.")
    fmt = read_json(root / MODEL_FORMAT_FILE)
    version = fmt.get("format_version") if isinstance(fmt, dict) else None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(f"{root / MODEL_FORMAT_FILE} has format_version {version!r}; this program reads "
                         f"version {FORMAT_VERSION} or lower. Use a matching container image.")
    return fmt


def read_hyperparameters(model_dir: str | os.PathLike[str]) -> dict[str, str]:
    """``hyperparameters.json``: the resolved string form (parse with ``Hyperparameters.from_strings``)."""
    return read_json(Path(model_dir) / MODEL_HYPERPARAMETERS_FILE)


def read_vocabularies(model_dir: str | os.PathLike[str]) -> tuple[dict[str, int], dict[str, int]]:
    """The ``(source, target)`` vocabularies, validated (:class:`FormatError` when malformed)."""
    from .vocab import load_vocab

    root = Path(model_dir)
    return load_vocab(root / SOURCE_VOCAB_FILE), load_vocab(root / TARGET_VOCAB_FILE)


def weights_path(model_dir: str | os.PathLike[str]) -> Path:
    """Where the state dict is (the container loads it with ``torch.load(weights_only=True)``)."""
    return Path(model_dir) / MODEL_WEIGHTS_FILE


@contextlib.contextmanager
def open_model_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a model directory for ``path``: the folder itself, or a ``model.tar.gz`` extracted to a
    temporary folder (removed afterwards). Raises :class:`InputError` when it is neither."""
    p = Path(path)
    if p.is_dir():
        yield p
        return
    if not p.exists():
        raise InputError(f"model {p} does not exist; pass the model directory written by s2s-train "
                         f"or the {MODEL_ARCHIVE} a training job produced")
    if not tarfile.is_tarfile(p):
        raise InputError(f"model {p} is neither a directory nor a tar archive; pass the model directory "
                         f"or {MODEL_ARCHIVE}")
    with tempfile.TemporaryDirectory(prefix="s2s-model-") as tmp:
        try:
            with tarfile.open(p) as tar:
                tar.extractall(tmp, filter="data")  # refuses absolute paths, links out of tmp, devices
        except (tarfile.TarError, OSError) as e:
            raise InputError(f"cannot extract model archive {p}: {e}; re-download the {MODEL_ARCHIVE}") from None
        root = Path(tmp)
        if not (root / MODEL_WEIGHTS_FILE).exists():
            # tolerate an archive that wraps the files in one folder
            subdirs = [d for d in root.iterdir() if d.is_dir()]
            if len(subdirs) == 1 and (subdirs[0] / MODEL_WEIGHTS_FILE).exists():
                root = subdirs[0]
        yield root


def pack_model_dir(model_dir: str | os.PathLike[str], archive: str | os.PathLike[str]) -> Path:
    """Write ``archive`` (a ``model.tar.gz``) holding the folder's entries at its root, as SageMaker does."""
    root, out = Path(model_dir), Path(archive)
    with atomic_write(out) as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
        for item in sorted(root.iterdir()):
            tar.add(item, arcname=item.name)
    return out
