"""Resumable training checkpoints and the self-contained model directory.

Checkpoint folder (``/opt/ml/checkpoints``, kept by managed spot training):

- ``training_state.pt`` -- model, optimizer, scheduler, step, epoch, data position, best metric,
  early-stopping counter, RNG states; rewritten atomically at every checkpoint.
- ``best_model.pt`` -- the parameters with the best ``optimized_metric`` so far.

Model directory (``/opt/ml/model``): ``model.pt`` (state dict), ``hyperparameters.json`` (resolved
string form), ``vocab.src.json``, ``vocab.trg.json``, ``format.json`` (``{"format_version": 1, ...}``).
Every file is written to a temporary name and renamed, so a reader never sees half a file.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

logger = logging.getLogger(__name__)

__all__ = ["FORMAT_VERSION", "TRAINING_STATE", "BEST_MODEL", "atomic_write", "save_torch", "load_torch",
           "write_model_dir", "MODEL_FILES"]

FORMAT_VERSION = 1
TRAINING_STATE = "training_state.pt"
BEST_MODEL = "best_model.pt"
MODEL_FILES = ("model.pt", "hyperparameters.json", "vocab.src.json", "vocab.trg.json", "format.json")


def atomic_write(path: Path, write: Callable[[Any], None], binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync, then rename onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_torch(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path: Path, map_location: str | torch.device = "cpu") -> Any:
    # our own files hold plain containers, tensors, numpy RNG state: not weights_only-safe types
    return torch.load(path, map_location=map_location, weights_only=False)


def _write_json(path: Path, value: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n"),
                 binary=False)


def _copy_into(src: Path, f: Any) -> None:
    with open(src, "rb") as r:
        shutil.copyfileobj(r, f)


def write_model_dir(model_dir: Path, state_dict: dict[str, torch.Tensor], hyperparameters: dict[str, str],
                    vocab_dir: Path, info: dict[str, Any] | None = None) -> None:
    """Write the self-contained model directory (vocabularies copied byte for byte)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.src.json", "vocab.trg.json"):
        atomic_write(model_dir / name, lambda f, src=Path(vocab_dir) / name: _copy_into(src, f))
    _write_json(model_dir / "hyperparameters.json", hyperparameters)
    save_torch({k: v.detach().cpu() for k, v in state_dict.items()}, model_dir / "model.pt")
    fmt = {"format_version": FORMAT_VERSION, "framework": "pytorch", "torch_version": torch.__version__}
    fmt.update(info or {})
    _write_json(model_dir / "format.json", fmt)
    logger.info("model written to %s", model_dir)
