"""Extra virtual environments for clients that cannot share ``.venv`` (the SageMaker Python SDK v2,
the AWS CLI v1), created by the test set-up from the pinned requirements in ``tests/clients/`` and
cached across runs.

``client_venv("sdk-v2")`` returns the ``bin`` folder of ``.venv-clients/sdk-v2`` (ignored by git,
like every ``.venv-*/``), creating it from ``tests/clients/sdk-v2.requirements.txt`` the first time and
re-creating it only when that file (or the Python version) changes: a hash stamp inside the venv says
what it was built from. A lock file makes concurrent test processes wait for one build.
``S2S_CLIENT_VENVS`` moves the cache folder.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLIENTS = Path(__file__).resolve().parent / "clients"
STAMP = ".s2s-requirements.sha256"


def venv_root() -> Path:
    return Path(os.environ.get("S2S_CLIENT_VENVS") or REPO / ".venv-clients")


def requirements_file(name: str) -> Path:
    path = CLIENTS / f"{name}.requirements.txt"
    if not path.is_file():
        known = sorted(p.name.removesuffix(".requirements.txt") for p in CLIENTS.glob("*.requirements.txt"))
        raise ValueError(f"no client venv named {name!r}: {path} does not exist (known: {', '.join(known)})")
    return path


def wanted_stamp(name: str) -> str:
    """What the venv must have been built from: the requirements file and this Python's version."""
    h = hashlib.sha256(requirements_file(name).read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def is_current(venv: Path, stamp: str) -> bool:
    try:
        return (venv / "bin" / "python").exists() and (venv / STAMP).read_text().strip() == stamp
    except OSError:
        return False


def client_venv(name: str) -> Path:
    """The ``bin`` folder of the cached client venv ``name``, built first when missing or stale.

    Raises RuntimeError with pip's output when the build fails (the half-built venv is removed, so
    the next run starts clean)."""
    stamp = wanted_stamp(name)
    root = venv_root()
    venv = root / name
    if is_current(venv, stamp):
        return venv / "bin"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building it: wait for it
        if not is_current(venv, stamp):
            _build(venv, requirements_file(name), stamp)
    return venv / "bin"


def _build(venv: Path, requirements: Path, stamp: str) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
         "-q", "-r", str(requirements)],
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    for argv in steps:
        r = subprocess.run(argv, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise RuntimeError(f"building the client venv {venv} from {requirements} failed at "
                               f"`{' '.join(argv)}` (exit {r.returncode}); it needs PyPI (or your pip index). "
                               f"pip said:\n{(r.stdout + r.stderr)[-4000:]}")
    (venv / STAMP).write_text(stamp + "\n")
