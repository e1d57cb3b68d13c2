"""Shared helpers of the algorithm benchmarks against JoeyNMT (training, decoding, quality).

What lives here:

- the peer: :func:`ensure_peer_venv` installs JoeyNMT 2.3.0 into its own venv
  (``benchmarks/.venv-joeynmt``) on the same torch build as ours, and :class:`PeerWorker` drives
  ``benchmarks/joeynmt/peer_worker.py`` inside it (one JSON line per command and per answer);
- the data: :func:`prepare_data` runs *our* preprocessing once on ``../shared/data/enja`` and writes
  both sides' inputs from it (the ``/opt/ml`` channel tree for ours, one-token-per-line vocabulary
  files for JoeyNMT with the same word types at the same ids);
- the matched model: :data:`MATCHED` sizes, :func:`our_hyperparameters`, :func:`render_joey_config`,
  the parameter counts (:func:`our_param_count`, :func:`joey_param_count`) and
  :func:`choose_attention_hidden`, which picks our ``rnn_attention_num_hidden`` so both counts agree;
- measuring: :class:`Interleaver` (SIGSTOP/SIGCONT time slices, so two trainings share the same
  machine load), :func:`load_average`, :func:`machine_summary`, :func:`parse_joey_log`.

Nothing here imports torch at module level; the test file ``tests/test_benchmarks_common.py`` covers
the pure helpers without a JoeyNMT install.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import signal
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "benchmarks"
JOEY_DIR = BENCH_DIR / "joeynmt"
JOEY_TEMPLATE = JOEY_DIR / "rnn_matched.yaml"
PEER_WORKER = JOEY_DIR / "peer_worker.py"
DEFAULT_PEER_VENV = BENCH_DIR / ".venv-joeynmt"
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "enja"
JOEYNMT_VERSION = "2.3.0"
#: how far apart the two models' parameter counts may be (fraction of the peer's)
PARAM_TOLERANCE = 0.02
THREADS = 2


class BenchmarkError(RuntimeError):
    """A benchmark cannot produce an honest figure (peer not installable, nonsense result)."""


def run_main(name: str, main: Callable[[], int]) -> None:
    """Run a benchmark script's ``main`` and exit with its status; a :class:`BenchmarkError` (the peer
    could not be set up, a run produced nonsense) exits 1 with ``NAME: FAILED: reason`` on stderr."""
    try:
        status = main()
    except BenchmarkError as e:
        print(f"{name}: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(status)


# -- the matched model --------------------------------------------------------------------------
@dataclass(frozen=True)
class MatchedModel:
    """The sizes both implementations are built with."""

    embed: int = 256                   # source and target embeddings
    encoder_total: int = 256           # bidirectional LSTM, half per direction
    decoder_hidden: int = 256          # one LSTM layer
    batch_size: int = 64               # sentences
    max_length: int = 50               # source and target tokens (training)

    @property
    def encoder_per_direction(self) -> int:
        return self.encoder_total // 2


MATCHED = MatchedModel()


def _lstm_params(inputs: int, hidden: int) -> int:
    """One torch ``nn.LSTM`` layer, one direction: weights and both bias vectors."""
    return 4 * hidden * (inputs + hidden) + 2 * 4 * hidden


def _linear_params(inputs: int, outputs: int, bias: bool = True) -> int:
    return inputs * outputs + (outputs if bias else 0)


def joey_param_count(src_vocab: int, trg_vocab: int, m: MatchedModel = MATCHED) -> int:
    """JoeyNMT 2.3.0's recurrent model as configured by ``rnn_matched.yaml`` (input feeding,
    bridge, Bahdanau attention without biases, output layer without bias)."""
    enc_out = m.encoder_total
    h = m.decoder_hidden
    return (src_vocab * m.embed + trg_vocab * m.embed
            + 2 * _lstm_params(m.embed, m.encoder_per_direction)
            + _lstm_params(m.embed + h, h)                          # input feeding: [emb; att vector]
            + _linear_params(enc_out, h, bias=False) + _linear_params(h, h, bias=False)
            + _linear_params(h, 1, bias=False)                      # Bahdanau key/query/energy
            + _linear_params(h + enc_out, h)                        # attention vector layer
            + _linear_params(enc_out, h)                            # bridge (same init for h and c)
            + _linear_params(h, trg_vocab, bias=False))


def our_param_count_formula(src_vocab: int, trg_vocab: int, attention_hidden: int,
                            m: MatchedModel = MATCHED) -> int:
    """Our RNN model (``s2s_algorithm``) with one layer each side, MLP attention, ``last`` init."""
    enc_out = m.encoder_total
    h = m.decoder_hidden
    a = attention_hidden
    return (src_vocab * m.embed + trg_vocab * m.embed
            + 2 * _lstm_params(m.embed, m.encoder_per_direction)
            + _lstm_params(m.embed, h)                              # no input feeding
            + _linear_params(enc_out, a, bias=False) + _linear_params(h, a) + _linear_params(a, 1, bias=False)
            + _linear_params(enc_out, 2 * h)                        # bridge: h and c
            + _linear_params(h + enc_out, h)                        # output hidden layer
            + _linear_params(h, trg_vocab))


def choose_attention_hidden(src_vocab: int, trg_vocab: int, m: MatchedModel = MATCHED,
                            tolerance: float = PARAM_TOLERANCE, step: int = 8,
                            limit: int = 4096) -> int:
    """Our ``rnn_attention_num_hidden`` (a multiple of ``step``, at least the decoder size) whose
    parameter count is closest to JoeyNMT's; :class:`BenchmarkError` when none is within ``tolerance``.

    Without input feeding our decoder LSTM is smaller than JoeyNMT's, so the default (= decoder size)
    leaves our model ~2.5 % smaller on enja; the attention MLP is the one free size the brief allows.
    """
    target = joey_param_count(src_vocab, trg_vocab, m)
    best = min(range(m.decoder_hidden, limit + 1, step),
               key=lambda a: abs(our_param_count_formula(src_vocab, trg_vocab, a, m) - target))
    diff = abs(our_param_count_formula(src_vocab, trg_vocab, best, m) - target) / target
    if diff > tolerance:
        raise BenchmarkError(
            f"no rnn_attention_num_hidden in {m.decoder_hidden}..{limit} brings our parameter count "
            f"within {tolerance:.0%} of JoeyNMT's ({target:,}); closest {best} is {diff:.2%} off. "
            "Check the vocabulary sizes and MatchedModel.")
    return best


def check_param_counts(ours: int, peer: int, tolerance: float = PARAM_TOLERANCE) -> float:
    """Relative difference ``|ours - peer| / peer``; :class:`BenchmarkError` beyond ``tolerance``."""
    if ours <= 0 or peer <= 0:
        raise BenchmarkError(f"parameter counts must be positive (ours {ours}, JoeyNMT {peer})")
    diff = abs(ours - peer) / peer
    if diff > tolerance:
        raise BenchmarkError(f"parameter counts differ by {diff:.2%} (ours {ours:,}, JoeyNMT {peer:,}); "
                             f"the benchmark needs them within {tolerance:.0%}: fix the matched config.")
    return diff


def our_hyperparameters(attention_hidden: int, m: MatchedModel = MATCHED, **extra: Any) -> dict[str, str]:
    """Our hyperparameters (string form, as SageMaker passes them) for the matched model."""
    hp: dict[str, Any] = {
        "encoder_type": "rnn", "decoder_type": "rnn", "rnn_cell_type": "lstm",
        "num_layers_encoder": 1, "num_layers_decoder": 1,
        "num_embed_source": m.embed, "num_embed_target": m.embed,
        "rnn_num_hidden": m.decoder_hidden, "rnn_attention_type": "mlp",
        "rnn_attention_num_hidden": attention_hidden, "rnn_decoder_state_init": "last",
        "batch_size": m.batch_size, "max_seq_len_source": m.max_length, "max_seq_len_target": m.max_length,
        "length_penalty_alpha": 1.0, "length_penalty_beta": 0.0,
    }
    hp.update(extra)
    if m.encoder_total != m.decoder_hidden:
        raise BenchmarkError("our RNN model has one rnn_num_hidden for the encoder (in total) and the "
                             "decoder; MatchedModel must use the same value for both")
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in hp.items()}


def our_param_count(src_vocab: int, trg_vocab: int, hyperparameters: Mapping[str, str]) -> int:
    """Build our model for these hyperparameters and count its parameters (imports torch)."""
    from s2s_aws.contract.hyperparameters import Hyperparameters
    from s2s_algorithm.config import ModelConfig
    from s2s_algorithm.model import Seq2Seq

    hp = Hyperparameters.from_strings(dict(hyperparameters))
    return Seq2Seq(ModelConfig.from_hyperparameters(hp, src_vocab, trg_vocab)).num_parameters()


def render_joey_config(values: Mapping[str, Any], template: Path = JOEY_TEMPLATE) -> str:
    """Fill the JoeyNMT YAML template; :class:`BenchmarkError` names a missing value."""
    text = template.read_text(encoding="utf-8")
    try:
        return string.Template(text).substitute({k: str(v) for k, v in values.items()})
    except KeyError as e:
        raise BenchmarkError(f"{template} needs a value for ${e.args[0]}") from None


def joey_config_values(data: "PreparedData", model_dir: Path, *, name: str, m: MatchedModel = MATCHED,
                       **overrides: Any) -> dict[str, Any]:
    """Every value ``rnn_matched.yaml`` needs, for the prepared data and the matched model."""
    values: dict[str, Any] = {
        "name": name, "model_dir": model_dir.as_posix(),
        "train_prefix": (data.data_dir / "train").as_posix(), "dev_prefix": (data.data_dir / "dev").as_posix(),
        "test_prefix": (data.data_dir / "test").as_posix(), "src_lang": "en", "trg_lang": "ja",
        "src_vocab": data.joey_src_vocab.as_posix(), "trg_vocab": data.joey_trg_vocab.as_posix(),
        "max_length": m.max_length, "seed": 1, "learning_rate": 0.001, "batch_size": m.batch_size,
        "epochs": 1000, "validation_freq": 500, "logging_freq": 100, "embed": m.embed,
        "encoder_hidden_per_direction": m.encoder_per_direction, "decoder_hidden": m.decoder_hidden,
        "beam_size": 5, "beam_alpha": 1.0, "max_output_length": data.max_output_length,
    }
    values.update(overrides)
    return values


def write_joey_config(path: Path, values: Mapping[str, Any]) -> Path:
    atomic_write_text(path, render_joey_config(values))
    return path


# -- vocabularies and data ------------------------------------------------------------------------
def joey_vocab_lines(vocab: Mapping[str, int]) -> list[str]:
    """Our ``{token: id}`` vocabulary as JoeyNMT's one-token-per-line file, in our id order.

    JoeyNMT 2.3.0 puts its specials first in the fixed order ``<unk> <pad> <s> </s>`` (ids 0-3) and
    then the file's tokens, skipping those already present; ours are ``<pad> <unk> <s> </s>``. So
    every word keeps its id (4 and up) and only ``<pad>``/``<unk>`` swap places: same type sets.
    """
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise BenchmarkError("the vocabulary's ids are not 0..n-1 without gaps; rebuild it with s2s-aws preprocess")
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    lines = [token for token, _ in by_id]
    bad = [t for t in lines if not t or any(c.isspace() for c in t)]
    if bad:
        raise BenchmarkError(f"token {bad[0]!r} cannot go into a one-token-per-line vocabulary file")
    return lines


def joey_ids(lines: Sequence[str]) -> dict[str, int]:
    """The ids JoeyNMT 2.3.0 gives the tokens of a vocabulary file (its own rule, for checks)."""
    itos: list[str] = []
    for token in ["<unk>", "<pad>", "<s>", "</s>", *lines]:
        if token not in itos:
            itos.append(token)
    return {t: i for i, t in enumerate(itos)}


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class PreparedData:
    """Where each side's inputs are (see :func:`prepare_data`)."""

    data_dir: Path                     # the raw corpus (train/dev/test .en/.ja)
    work_dir: Path
    ml_root: Path                      # ours: input/data/{train,validation,vocab}
    vocab_dir: Path
    joey_src_vocab: Path
    joey_trg_vocab: Path
    src_vocab_size: int
    trg_vocab_size: int
    max_output_length: int             # our decoder's bound for the longest test source
    test_source: Path = field(init=False)
    test_reference: Path = field(init=False)

    def __post_init__(self) -> None:
        self.test_source = self.data_dir / "test.en"
        self.test_reference = self.data_dir / "test.ja"


def find_data_dir(given: str | os.PathLike | None = None) -> Path:
    """The enja corpus folder (``--data``, ``$S2S_ENJA_DIR`` or ``../shared/data/enja``)."""
    path = Path(given or os.environ.get("S2S_ENJA_DIR") or DEFAULT_DATA_DIR)
    missing = [n for n in ("train.en", "train.ja", "dev.en", "dev.ja", "test.en", "test.ja") if not (path / n).is_file()]
    if missing:
        raise BenchmarkError(f"the enja corpus is not at {path} (missing {', '.join(missing)}); pass --data "
                             "or set S2S_ENJA_DIR to the folder with train/dev/test .en/.ja")
    return path


def prepare_data(data_dir: Path, work_dir: Path, m: MatchedModel = MATCHED) -> PreparedData:
    """Run our preprocessing once and lay out both sides' inputs under ``work_dir`` (idempotent)."""
    from s2s_aws.contract import vocab as vocab_format
    from s2s_aws.preprocess import preprocess

    work_dir = Path(work_dir)
    prep = work_dir / "prep"
    names = ("train.rec", "val.rec", "vocab.src.json", "vocab.trg.json")
    if not all((prep / n).is_file() for n in names):
        summary = preprocess(data_dir / "train.en", data_dir / "train.ja", data_dir / "dev.en", data_dir / "dev.ja",
                             output_dir=prep, workers=1)
        logger.info("%s", summary.format())
    ml_root = work_dir / "ours_ml"
    for channel, name in (("train", "train.rec"), ("validation", "val.rec"),
                          ("vocab", "vocab.src.json"), ("vocab", "vocab.trg.json")):
        target = ml_root / "input" / "data" / channel / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file():
            shutil.copyfile(prep / name, target)
    src = vocab_format.load_vocab(prep / "vocab.src.json")
    trg = vocab_format.load_vocab(prep / "vocab.trg.json")
    joey_dir = work_dir / "joey_vocab"
    for vocab, name in ((src, "src_vocab.txt"), (trg, "trg_vocab.txt")):
        atomic_write_text(joey_dir / name, "\n".join(joey_vocab_lines(vocab)) + "\n")
    longest = max(len(line.split()) for line in (data_dir / "test.en").read_text(encoding="utf-8").splitlines())
    return PreparedData(data_dir=data_dir, work_dir=work_dir, ml_root=ml_root, vocab_dir=prep,
                        joey_src_vocab=joey_dir / "src_vocab.txt", joey_trg_vocab=joey_dir / "trg_vocab.txt",
                        src_vocab_size=len(src), trg_vocab_size=len(trg),
                        max_output_length=min(m.max_length, 2 * longest + 10))


# -- the peer venv --------------------------------------------------------------------------------
def our_torch_version() -> str:
    """Our torch version without the local build tag (``2.13.0+cpu`` -> ``2.13.0``)."""
    import torch

    return torch.__version__.split("+")[0]


def peer_python(venv: Path = DEFAULT_PEER_VENV) -> Path:
    return Path(venv) / "bin" / "python"


def ensure_peer_venv(venv: Path = DEFAULT_PEER_VENV, *, install: bool = True) -> Path:
    """The peer venv's python, creating the venv and installing JoeyNMT first when needed.

    Installs ``torch==<our version> joeynmt==2.3.0 importlib_metadata`` (JoeyNMT imports the latter
    without declaring it) and checks that the peer's torch is exactly our build.
    """
    import torch

    venv = Path(venv)
    python = peer_python(venv)
    if not python.exists():
        if not install:
            raise BenchmarkError(f"no JoeyNMT venv at {venv}; run without --no-install to create it")
        base = Path(getattr(sys, "_base_executable", sys.executable))
        _run([str(base), "-m", "venv", str(venv)], "create the JoeyNMT venv")
    probe = [str(python), "-c", "import importlib.metadata as m, torch; print(m.version('joeynmt'), torch.__version__)"]
    found = subprocess.run(probe, capture_output=True, text=True)
    want = f"{JOEYNMT_VERSION} {torch.__version__}"
    if found.returncode != 0 or found.stdout.strip() != want:
        if not install:
            raise BenchmarkError(f"the venv {venv} has {found.stdout.strip() or 'no JoeyNMT'}; expected {want}")
        _run([str(python), "-m", "pip", "install", f"torch=={our_torch_version()}", f"joeynmt=={JOEYNMT_VERSION}",
              "importlib_metadata"], "install JoeyNMT into its venv")
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode != 0 or found.stdout.strip() != want:
            raise BenchmarkError(f"after installing, the venv {venv} reports {found.stdout.strip()!r} "
                                 f"({found.stderr.strip()[-500:]}); expected {want!r} (same torch build as ours)")
    return python


def _run(cmd: list[str], what: str) -> None:
    logger.info("%s: %s", what, " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchmarkError(f"could not {what} (exit {proc.returncode}): {' '.join(cmd)}\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def thread_env(threads: int = THREADS, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"})
    return env


class PeerWorker:
    """``peer_worker.py`` running in the JoeyNMT venv; :meth:`call` sends one command, returns the answer."""

    def __init__(self, python: Path, log_path: Path, threads: int = THREADS):
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(python), str(PEER_WORKER), "--threads", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     env=thread_env(threads), text=True, bufsize=1)

    def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            raise BenchmarkError(f"the JoeyNMT worker ended during {cmd!r} (exit {self.proc.poll()}); "
                                 f"its log: {self.log_path}\n{self._tail()}")
        answer = json.loads(line)
        if "error" in answer:
            raise BenchmarkError(f"the JoeyNMT worker failed on {cmd!r}: {answer['error']} (log: {self.log_path})")
        return answer

    def _tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("quit")
            except BenchmarkError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> "PeerWorker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- measuring -----------------------------------------------------------------------------------
def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on Linux
        return (float("nan"),) * 3


def machine_summary() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu,
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "threads": THREADS,
            "gpu": "not measured (no GPU lent)" if not torch.cuda.is_available() else torch.cuda.get_device_name(0)}


def median(values: Iterable[float]) -> float:
    v = sorted(values)
    if not v:
        raise BenchmarkError("no measurements to take the median of")
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


_JOEY_STEP = re.compile(r"Epoch\s+(\d+), Step:\s+(\d+), Batch Loss:\s+([-+0-9.eE]+|nan), Batch Acc:\s+([-+0-9.eE]+|nan), "
                        r"Tokens per Sec:\s+([0-9.]+), Lr:\s+([-+0-9.eE]+)")
_JOEY_VALID = re.compile(r"Evaluation result \(greedy\):.*?bleu:\s+([-+0-9.eE]+).*?loss:\s+([-+0-9.eE]+).*?ppl:\s+([-+0-9.eE]+)")


@dataclass
class JoeyStep:
    epoch: int
    step: int
    loss: float
    accuracy: float
    tokens_per_sec: float
    lr: float


def parse_joey_log(text: str) -> list[JoeyStep]:
    """The training-progress lines of a JoeyNMT 2.3.0 ``train.log`` (one per ``logging_freq`` updates)."""
    out = []
    for m in _JOEY_STEP.finditer(text):
        out.append(JoeyStep(int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4)),
                            float(m.group(5)), float(m.group(6))))
    return out


def parse_joey_validations(text: str) -> list[dict[str, float]]:
    """BLEU, loss and perplexity of each JoeyNMT validation in a ``train.log``."""
    return [{"bleu": float(m.group(1)), "loss": float(m.group(2)), "ppl": float(m.group(3))}
            for m in _JOEY_VALID.finditer(text)]


class Interleaver:
    """Run several processes in turn on the same machine: one runs, the others are SIGSTOPped.

    Each process gets ``budget`` seconds of its own running (wall-clock) time, in slices of ``slice_s``,
    so all of them see the same background load over the run. When a process has used its budget it is
    sent ``stop_signal`` (and continued so it can act on it); :meth:`run` returns when every process
    has exited, with the seconds each one ran.
    """

    def __init__(self, procs: Mapping[str, subprocess.Popen], budget: float, *, slice_s: float = 30.0,
                 stop_signals: Mapping[str, int] | None = None, grace: float = 600.0):
        self.procs = dict(procs)
        self.budget = float(budget)
        self.slice_s = float(slice_s)
        self.stop_signals = dict(stop_signals or {})
        self.grace = grace
        self.used = {name: 0.0 for name in self.procs}
        self.loads: list[float] = []

    def _pause_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGSTOP)

    def run(self) -> dict[str, float]:
        self._pause_all()
        live = [n for n, p in self.procs.items() if p.poll() is None]
        while live:
            for name in list(live):
                p = self.procs[name]
                if p.poll() is not None:
                    live.remove(name)
                    continue
                share = min(self.slice_s, self.budget - self.used[name])
                p.send_signal(signal.SIGCONT)
                start = time.monotonic()
                try:
                    p.wait(timeout=max(share, 0.0))
                except subprocess.TimeoutExpired:
                    pass
                self.used[name] += time.monotonic() - start
                self.loads.append(load_average()[0])
                if p.poll() is not None:
                    live.remove(name)
                    continue
                if self.used[name] >= self.budget:
                    # budget spent: ask it to stop, let it finish on its own (saving its model)
                    p.send_signal(self.stop_signals.get(name, signal.SIGTERM))
                    try:
                        p.wait(timeout=self.grace)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
                    live.remove(name)
                else:
                    p.send_signal(signal.SIGSTOP)
        return dict(self.used)

    def kill_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, str]:
    """sacreBLEU with ``tokenize='none'`` (the corpus is pre-tokenized): score and signature."""
    from s2s_aws.contract.metrics import corpus_score
    from s2s_aws.errors import InputError

    try:
        return corpus_score(hypotheses, references, metric="bleu")
    except InputError as e:
        raise BenchmarkError(str(e)) from None


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s")


def format_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
