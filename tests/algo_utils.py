"""Helpers for the algorithm tests: a real ``/opt/ml`` tree with generated data, and a tiny trained model.

``train_tiny_model(tmp_path)`` returns a model directory trained on the sequence-reversal task; the
training runs once per test session (the result is copied into each caller's ``tmp_path``).

Example::

    from algo_utils import train_tiny_model     # tests/ is on sys.path under pytest
    model_dir = train_tiny_model(tmp_path)          # tmp_path/model with model.pt, vocabs, ...

``ServeProcess`` runs the real ``s2s-serve`` on a free loopback port (the HTTP tests and the serving
benchmarks share it); ``sentences_for`` makes random sentences from a model's source vocabulary.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

REPO = Path(__file__).resolve().parents[1]
NUM_SYMBOLS = 20
SYMBOLS = [f"w{i}" for i in range(NUM_SYMBOLS)]

#: A config that learns to reverse sequences of length <= 8 over 20 symbols within a few hundred batches.
TINY_HYPERPARAMETERS: dict[str, str] = {
    "num_embed_source": "32",
    "num_embed_target": "32",
    "rnn_num_hidden": "64",
    "rnn_attention_num_hidden": "32",
    "batch_size": "32",
    "learning_rate": "0.01",
    "clip_gradient": "1",
    "checkpoint_frequency_num_batches": "100",
    "max_num_batches": "400",
    "max_seq_len_source": "10",
    "max_seq_len_target": "10",
    "bleu_sample_size": "-1",
    "optimized_metric": "bleu",
    "beam_size": "3",
    "checkpoint_threshold": "3",
    "seed": "3",
}


def vocabulary() -> dict[str, int]:
    v = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3}
    for i, s in enumerate(SYMBOLS):
        v[s] = i + 4
    return v


def reverse_pairs(n: int, seed: int, max_len: int = 8) -> list[tuple[list[int], list[int]]]:
    """``n`` (source, reversed source) id pairs over the 20 symbols (ids 4..23)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        src = [rng.randrange(4, 4 + NUM_SYMBOLS) for _ in range(rng.randint(1, max_len))]
        out.append((src, src[::-1]))
    return out


def write_ml_tree(root: Path, hyperparameters: dict[str, str] | None = None, *,
                  train: Sequence[tuple[Sequence[int], Sequence[int]]] | None = None,
                  validation: Sequence[tuple[Sequence[int], Sequence[int]]] | None = None,
                  channels: Iterable[str] = ("train", "validation", "vocab"),
                  hosts: Sequence[str] = ("algo-1",)) -> Path:
    """Write ``root/input/config/*.json`` and the channels the way SageMaker lays them out."""
    from s2s_aws.contract import records, vocab as vocab_format

    root = Path(root)
    channels = list(channels)
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    hp = dict(TINY_HYPERPARAMETERS if hyperparameters is None else hyperparameters)
    (config / "hyperparameters.json").write_text(json.dumps(hp))
    (config / "inputdataconfig.json").write_text(json.dumps(
        {c: {"ContentType": "application/x-recordio-protobuf" if c != "vocab" else "application/json",
             "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"} for c in channels}))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": hosts[0], "hosts": list(hosts), "network_interface_name": "eth0"}))
    data = root / "input" / "data"
    if "train" in channels:
        (data / "train").mkdir(parents=True, exist_ok=True)
        records.write_pairs(data / "train" / "train.rec", train if train is not None else reverse_pairs(3000, 1))
    if "validation" in channels:
        (data / "validation").mkdir(parents=True, exist_ok=True)
        records.write_pairs(data / "validation" / "val.rec",
                            validation if validation is not None else reverse_pairs(100, 2))
    if "vocab" in channels:
        (data / "vocab").mkdir(parents=True, exist_ok=True)
        vocab_format.save_vocab(vocabulary(), data / "vocab" / "vocab.src.json")
        vocab_format.save_vocab(vocabulary(), data / "vocab" / "vocab.trg.json")
    return root


def run_train(root: Path, timeout: float = 300, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``s2s-train`` as SageMaker would (a subprocess), with ``S2S_ML_ROOT=root``."""
    env = dict(os.environ)
    env.update({"S2S_ML_ROOT": str(root), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1"})
    env.update(extra_env or {})
    code = "import sys; from s2s_algorithm.train import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO), capture_output=True,
                          text=True, timeout=timeout)


_CACHE: dict[str, Path] = {}


def tiny_training_root(hyperparameters: dict[str, str] | None = None) -> Path:
    """The ``/opt/ml`` root of the session's tiny training run (its stdout is in ``stdout.txt``).

    Treat it as read-only: other tests share it.
    """
    hp = dict(TINY_HYPERPARAMETERS if hyperparameters is None else hyperparameters)
    key = json.dumps(hp, sort_keys=True)
    root = _CACHE.get(key)
    if root is None or not (root / "model" / "model.pt").is_file():
        root = Path(tempfile.mkdtemp(prefix="s2s-tiny-"))
        write_ml_tree(root, hp)
        proc = run_train(root)
        (root / "stdout.txt").write_text(proc.stdout)
        if proc.returncode != 0:
            failure = root / "output" / "failure"
            raise RuntimeError(f"s2s-train failed ({proc.returncode}): "
                               f"{failure.read_text() if failure.is_file() else ''}\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-3000:]}")
        _CACHE[key] = root
    return root


def train_tiny_model(tmp_path: Path, hyperparameters: dict[str, str] | None = None) -> Path:
    """A trained model directory (reversal task) at ``tmp_path/model``; trained once per session."""
    dest = Path(tmp_path) / "model"
    shutil.copytree(tiny_training_root(hyperparameters) / "model", dest, dirs_exist_ok=True)
    return dest


def sentences_for(model_dir: Path, n: int, seed: int, words: tuple[int, int] = (2, 8)) -> list[str]:
    """``n`` random sentences of ``words`` (min, max) words from the model's source vocabulary."""
    vocab = json.loads((Path(model_dir) / "vocab.src.json").read_text(encoding="utf-8"))
    choices = [w for w, i in vocab.items() if i >= 4]
    rng = random.Random(seed)
    return [" ".join(rng.choice(choices) for _ in range(rng.randint(*words))) for _ in range(n)]


class ServeProcess:
    """``s2s-serve`` on 127.0.0.1:<free port> with ``model_dir``; its output goes to ``log_path``
    (a temporary file by default). ``OMP_NUM_THREADS`` is 1 unless ``env_extra`` says otherwise."""

    def __init__(self, model_dir: Path, env_extra: dict[str, str] | None = None, log_path: Path | None = None,
                 log_level: str = "warning"):
        import httpx  # noqa: F401  (fail here, not in wait_ready, when it is missing)

        from s2s_aws.local.support import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("s2s-serve")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "s2s_algorithm.serve"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
        env.pop("SAGEMAKER_BIND_TO_PORT", None)
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="s2s-serve-", suffix=".log")[1])
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd + ["--host", "127.0.0.1", "--port", str(self.port), "--model-dir",
                                            str(model_dir), "--log-level", log_level],
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        """Everything the server has printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until ``/ping`` answers 200; ``RuntimeError`` with the server's output if it exits or times out."""
        import httpx

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s2s-serve exited with {self.proc.returncode}:\n{self.log()[-2000:]}")
            try:
                if httpx.get(self.url + "/ping", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"s2s-serve not ready after {timeout} s:\n{self.log()[-2000:]}")

    def stop(self) -> int:
        """SIGTERM (the graceful stop SageMaker sends), SIGKILL after 60 s; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
