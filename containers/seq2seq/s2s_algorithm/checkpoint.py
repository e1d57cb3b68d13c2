"""Resumable training checkpoints and the self-contained model directory.

Checkpoint folder (``/opt/ml/checkpoints``, kept by managed spot training):

- ``training_state.pt`` -- a header (``{"format": "s2s-aws-training-state", "format_version": 2}``),
  model, optimizer, scheduler, step, epoch, data position, best metric, early-stopping counter, RNG
  states; rewritten atomically at every checkpoint.
- ``best_model.pt`` -- the parameters with the best ``optimized_metric`` so far.

Model directory (``/opt/ml/model``): its files and format are :mod:`s2s_aws.contract.model_dir`;
:func:`write_model_dir` hands it the weights (``torch.save``). Every file is written to a temporary
name, fsynced and renamed (:mod:`s2s_aws.contract._files`), so a reader never sees half a file.

Loading never runs code: every ``.pt`` file is read with ``torch.load(weights_only=True)``, which
accepts tensors and plain values (dicts, lists, tuples, numbers, strings, None) and refuses
anything else -- a pickled class or function in a model artifact or a checkpoint raises
:class:`UnsafeFileError` instead of running. That is why the RNG states are stored as tensors and
numbers (:func:`rng_state`), not as numpy objects.
"""
from __future__ import annotations

import logging
import pickle
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from s2s_aws.contract import _files
from s2s_aws.contract import model_dir as model_dir_format
from s2s_aws.contract.model_dir import FORMAT_VERSION, MODEL_FILES
from s2s_aws.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["FORMAT_VERSION", "TRAINING_STATE", "BEST_MODEL", "atomic_write", "save_torch", "load_torch",
           "load_state_dict", "is_state_dict", "save_training_state", "load_training_state", "rng_state",
           "set_rng_state", "UnsafeFileError", "write_model_dir", "MODEL_FILES"]

TRAINING_STATE_HEADER = {"format": "s2s-aws-training-state", "format_version": 2}
TRAINING_STATE = "training_state.pt"
BEST_MODEL = "best_model.pt"


def atomic_write(path: Path, write: Callable[[Any], None], binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync, then rename onto ``path``
    (:func:`s2s_aws.contract._files.atomic_write`; parent folders are created)."""
    with _files.atomic_write(path, "wb" if binary else "w", mkdir=True) as f:
        write(f)


def save_torch(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


class UnsafeFileError(InputError):
    """A ``.pt`` file holds something other than tensors and plain values, so it was not loaded."""


def load_torch(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """Read a file written by :func:`save_torch`; never unpickles classes or functions."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UnsafeFileError(
            f"{path} was not loaded: it holds objects other than tensors and plain values "
            f"({first[:200]}), and loading those could run code. s2s-aws reads only files written by "
            "s2s-train; re-create the file by training again, and check who can write to that S3 location."
        ) from None


def is_state_dict(value: Any) -> bool:
    """Whether ``value`` is a mapping of parameter names (str) to tensors."""
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                           for k, v in value.items())


def load_state_dict(path: Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """A model state dict (``model.pt``, ``best_model.pt``): a mapping of parameter names to tensors."""
    value = load_torch(path, map_location)
    if not is_state_dict(value):
        raise UnsafeFileError(f"{path} is not a model state dict (a mapping of parameter names to tensors). "
                              "Re-create it with s2s-train.")
    return value


def rng_state(cuda: bool) -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors and numbers (loadable with ``weights_only``)."""
    key, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {"python": random.getstate(),
            "numpy": {"key": str(key), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                      "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if cuda else None}


def set_rng_state(rng: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    py = rng["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = rng["numpy"]
    np.random.set_state((n["key"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(rng["torch"].cpu())
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"].cpu())


def save_training_state(state: dict[str, Any], path: Path) -> None:
    """Write ``training_state.pt`` with its header."""
    save_torch({"header": dict(TRAINING_STATE_HEADER), **state}, path)


def load_training_state(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read ``training_state.pt``; raises :class:`UnsafeFileError` or :class:`InputError` when it cannot."""
    value = load_torch(path, map_location)
    header = value.get("header") if isinstance(value, dict) else None
    if not isinstance(header, dict) or header.get("format") != TRAINING_STATE_HEADER["format"]:
        raise InputError(f"{path} is not an s2s-aws training state (no header).")
    version = header.get("format_version")
    if version != TRAINING_STATE_HEADER["format_version"]:
        raise InputError(f"{path} has training-state format_version {version!r}; this program reads "
                         f"version {TRAINING_STATE_HEADER['format_version']}.")
    return value


def write_model_dir(model_dir: Path, state_dict: dict[str, torch.Tensor], hyperparameters: dict[str, str],
                    vocab_dir: Path, info: dict[str, Any] | None = None) -> None:
    """Write the self-contained model directory (:mod:`s2s_aws.contract.model_dir`; vocabularies
    copied byte for byte)."""
    weights = {k: v.detach().cpu() for k, v in state_dict.items()}
    fmt = {"framework": "pytorch", "torch_version": torch.__version__, **(info or {})}
    model_dir_format.write_model_dir(model_dir, lambda f: torch.save(weights, f), hyperparameters, vocab_dir, fmt)
    logger.info("model written to %s", model_dir)
