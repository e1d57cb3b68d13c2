"""The hyperparameter schema of the seq2seq algorithm, shared by the SDK and the container.

SageMaker hands a training container its hyperparameters as a JSON object of *strings*. This module
parses and validates them once, in one place, for everybody: the SDK validates before it calls any
AWS API, the training program validates what it finds in ``hyperparameters.json``, and the pipeline
builds its parameters from :data:`SCHEMA`.

Example::

    from s2s_aws.hyperparameters import Hyperparameters

    hp = Hyperparameters.from_strings({"batch_size": "32", "optimizer_type": "sgd", "momentum": "0.9"})
    hp.batch_size                  # 32 (typed)
    hp.rnn_attention_num_hidden    # 1024: follows rnn_num_hidden unless set
    hp.to_strings()                # {'batch_size': '32', 'momentum': '0.9', 'optimizer_type': 'sgd'}
    hp.replace(batch_size=64)      # a new object; Hyperparameters objects are immutable

Rules decided here (the contract leaves them open):

* Booleans accept ``true``/``false`` and ``1``/``0`` in any case (surrounding blanks ignored);
  the canonical string is ``true``/``false``. Choices are matched case-insensitively and stored in
  lower case. Integers are plain decimal (``"32"``, ``"-1"``); floats are decimal or scientific
  notation (``"3e-4"``); NaN and infinities are rejected. Canonical strings are ``str(int)`` and
  ``repr(float)`` (``"1.0"``, ``"0.0003"``, ``"1e-05"``), so ``from_strings(x).to_strings() == x``
  holds exactly for canonical input.
* Cross-field rules never reject a combination the built-in algorithm accepts (CONTRACT.md). Each
  rule, checked against the built-in's documentation (and Sockeye, the toolkit it is based on):

  - ``optimized_metric=bleu`` with ``bleu_sample_size=0`` (the default; the classic notebook does
    this) is accepted: BLEU is computed on the whole validation set, as the built-in does
    (:attr:`Hyperparameters.effective_bleu_sample_size` is -1).
  - ``rnn_residual_connections=true`` with a single RNN layer on each side ("should be more than
    1", not rejected by the built-in) is accepted and has no effect; so has an
    ``rnn_first_residual_layer`` above the top layer.
  - ``rnn_attention_in_upper_layers=true`` with one decoder layer is accepted and has no effect.
  - ``rnn_*`` settings with ``encoder_type=decoder_type=cnn`` (and ``cnn_*`` with rnn on both
    sides), ``plateau_reduce_*`` with a ``fixed_rate_*`` scheduler, ``fixed_rate_lr_half_life``
    with ``plateau_reduce``, and ``xavier_factor_type`` with ``weight_init_type=uniform`` are
    accepted and have no effect.
  - ``clip_gradient=0`` is accepted and turns clipping off (the built-in's MXNet optimizers treat
    a value <= 0 as off); :attr:`Hyperparameters.effective_clip_gradient` is then None.
  - ``plateau_reduce_lr_factor`` may be 1 (keep the rate): the built-in's range is (0, 1].
  - Still errors, because the built-in rejects them too: ``momentum`` with ``optimizer_type``
    other than sgd ("Don't pass this parameter if you are using adam or rmsprop"; its optimizers
    take no momentum) and ``min_num_epochs`` greater than ``max_num_epochs`` (Sockeye: "Minimum
    number of epochs must be smaller than maximum number of epochs").

  :meth:`Hyperparameters.notes` returns one line for each accepted combination above that is read
  in a way worth saying; the training program logs them once at start.
* Sizes have generous but finite upper bounds (the built-in documents only "positive integer"):
  ``num_layers_*`` <= 100; ``rnn_num_hidden``, ``rnn_attention_num_hidden``, ``num_embed_*``,
  ``cnn_num_hidden`` <= 16384; ``cnn_kernel_width_*`` <= 128; ``batch_size`` <= 65536;
  ``max_seq_len_*`` <= 10000; ``beam_size`` <= 256. Within them the training program estimates the
  memory of the parameters and optimizer state once it knows the vocabulary sizes, and refuses a
  model that cannot fit (exit 2, with the estimate).
* ``learning_rate`` and ``weight_init_scale`` must be > 0 (the built-in documents "float"; zero or
  a negative value cannot train), dropouts are in [0, 1].
* Values shown in error messages are shortened (a value may be a 100 000-deep list or a
  megabyte-long string).
* Names starting with ``sagemaker_`` or ``_`` are reserved for SageMaker itself (framework and
  tuning jobs inject such entries); :meth:`Hyperparameters.from_strings` ignores them by default.
* Several problems are reported together in one :class:`~s2s_aws.errors.HyperparameterError`,
  one per line; its ``errors`` attribute holds the individual errors (each with ``name``,
  ``value`` and ``allowed``). A single problem keeps its own ``name``/``value``/``allowed``.
* Equality compares the *resolved* values (:meth:`Hyperparameters.as_dict`): an object with
  ``batch_size=64`` set explicitly equals the default object. ``to_strings()`` still remembers what
  was set explicitly.
"""
from __future__ import annotations

import difflib
import logging
import math
import numbers
import re
import reprlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import HyperparameterError

__all__ = [
    "Hyperparameters",
    "HyperparameterSpec",
    "SCHEMA",
    "EXTENSION_NAMES",
    "RESERVED_PREFIXES",
    "describe",
]

logger = logging.getLogger(__name__)

#: Name prefixes SageMaker (or its SDK) may add to a job's hyperparameters; never ours.
RESERVED_PREFIXES: tuple[str, ...] = ("sagemaker_", "_")

_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


@dataclass(frozen=True)
class HyperparameterSpec:
    """One hyperparameter: its type, default, allowed values and help text.

    ``kind`` is ``"int"``, ``"float"``, ``"bool"`` or ``"choice"``. ``minimum``/``maximum`` bound
    numbers (inclusive unless ``min_exclusive``/``max_exclusive``); ``special`` lists extra
    values allowed outside the bounds (``-1`` = unlimited); ``excluded`` lists values rejected inside
    them. ``default`` is None for a name that is unset unless given (``optional``) or whose default
    follows another name (``default_from``).
    """

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    special: tuple[Any, ...] = ()
    excluded: tuple[Any, ...] = ()
    even: bool = False
    optional: bool = False
    default_from: str | None = None
    extension: bool = False

    @property
    def type_name(self) -> str:
        """A short type name for tables: int, float, bool or str."""
        return {"choice": "str"}.get(self.kind, self.kind)

    @property
    def allowed(self) -> str:
        """What values are allowed, in words (used in error messages and tables)."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of: " + ", ".join(self.choices)
        noun = "an even integer" if self.even else ("an integer" if self.kind == "int" else "a number")
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            text = (f"{noun} in {'(' if self.min_exclusive else '['}{_fmt(lo)}, "
                    f"{_fmt(hi)}{')' if self.max_exclusive else ']'}")
        elif lo is not None and self.kind == "int" and lo == 1 and not self.min_exclusive:
            text = f"{noun} > 0"
        elif lo is not None:
            text = f"{noun} {'>' if self.min_exclusive else '>='} {_fmt(lo)}"
        elif hi is not None:
            text = f"{noun} {'<' if self.max_exclusive else '<='} {_fmt(hi)}"
        else:
            text = noun
        if self.excluded:
            text += " other than " + ", ".join(_fmt(v) for v in self.excluded)
        if self.special:
            text += ", or " + ", ".join(_fmt(v) for v in self.special)
        return text

    @property
    def default_text(self) -> str:
        """The default as shown to users (``unset``, ``= rnn_num_hidden``, or a canonical string)."""
        if self.default_from is not None:
            return f"= {self.default_from}"
        if self.default is None:
            return "unset"
        return self.to_string(self.default)

    def to_string(self, value: Any) -> str:
        """The canonical string form of a valid python value."""
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "float":
            return repr(float(value))
        return str(value)

    def parse(self, value: Any) -> Any:
        """Convert a string or python value to this parameter's type and check it.

        Raises :class:`HyperparameterError` naming the parameter, the value and what is allowed.
        """
        converted = self._convert(value)
        if self.kind in ("int", "float") and not self._in_range(converted):
            raise self._error(value)
        return converted

    # -- internals -------------------------------------------------------------------------------
    def _error(self, value: Any, extra: str = "") -> HyperparameterError:
        shown = _shown(value)
        message = f"hyperparameter {self.name}={shown} is not allowed: expected {self.allowed}"
        if extra:
            message += f" ({extra})"
        message += f". Fix the value, or leave {self.name} out to use the default ({self.default_text})."
        return HyperparameterError(message, name=self.name, value=value, allowed=self.allowed)

    def _convert(self, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if self.kind == "bool":
                low = text.lower()
                if low in _TRUE:
                    return True
                if low in _FALSE:
                    return False
                raise self._error(value)
            if self.kind == "choice":
                low = text.lower()
                if low in self.choices:
                    return low
                raise self._error(value, _did_you_mean(low, self.choices))
            if self.kind == "int":
                if _INT_RE.fullmatch(text):
                    try:
                        return int(text)
                    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
                        raise self._error(value, "the number has too many digits") from None
                hint = "write a whole number such as 32" if _FLOAT_RE.fullmatch(text) else ""
                raise self._error(value, hint)
            if _FLOAT_RE.fullmatch(text):  # float
                result = float(text)
                if math.isfinite(result):
                    return result
            raise self._error(value)
        # python values
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise self._error(value)
        if self.kind == "choice":
            raise self._error(value, "give the choice as a string")
        if isinstance(value, bool):  # bool is an int subclass; True is not a batch size
            raise self._error(value)
        if self.kind == "int":
            if isinstance(value, numbers.Integral):  # int, numpy integers
                return int(value)
            if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
                return int(value)
            raise self._error(value)
        if isinstance(value, numbers.Real) and math.isfinite(value):
            return float(value)
        raise self._error(value)

    def _in_range(self, value: float) -> bool:
        if value in self.special:
            return True
        if value in self.excluded:
            return False
        if self.minimum is not None:
            if value < self.minimum or (self.min_exclusive and value == self.minimum):
                return False
        if self.maximum is not None:
            if value > self.maximum or (self.max_exclusive and value == self.maximum):
                return False
        if self.even and value % 2 != 0:
            return False
        return True


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 120, 120
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6


def _shown(value: Any) -> str:
    """``repr(value)`` for messages: bounded in length and depth (a value may be a 100k-deep list)."""
    return _SHORT.repr(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _did_you_mean(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _int(name: str, default: Any, help: str, **kw: Any) -> HyperparameterSpec:
    return HyperparameterSpec(name, "int", default, help, **kw)


def _float(name: str, default: Any, help: str, **kw: Any) -> HyperparameterSpec:
    return HyperparameterSpec(name, "float", float(default) if default is not None else None, help, **kw)


def _bool(name: str, default: bool, help: str, **kw: Any) -> HyperparameterSpec:
    return HyperparameterSpec(name, "bool", default, help, **kw)


def _choice(name: str, default: str, choices: tuple[str, ...], help: str, **kw: Any) -> HyperparameterSpec:
    return HyperparameterSpec(name, "choice", default, help, choices=choices, **kw)


_POS = {"minimum": 1}                                      # int > 0
#: Upper bounds of the sizes (generous, but finite: the built-in documents "positive integer"; a
#: size far past any trainable model must fail at once, not allocate until the host runs out).
MAX_LAYERS = 100
MAX_UNITS = 16384            # rnn_num_hidden, rnn_attention_num_hidden, num_embed_*, cnn_num_hidden
MAX_KERNEL_WIDTH = 128
MAX_BATCH_SIZE = 65536
MAX_SEQ_LEN = 10000
MAX_BEAM_SIZE = 256


def _upto(maximum: int) -> dict[str, Any]:
    return {"minimum": 1, "maximum": maximum}


_UNIT = {"minimum": 0.0, "maximum": 1.0}                   # float in [0, 1]
_ACTIVATIONS = ("glu", "relu", "softrelu", "sigmoid", "tanh")

_SPECS: tuple[HyperparameterSpec, ...] = (
    # -- the built-in algorithm's names (CONTRACT.md), alphabetical --------------------------------
    _int("batch_size", 64, "Sentence pairs per mini-batch (per device).", **_upto(MAX_BATCH_SIZE)),
    _int("beam_size", 5, "Beam width used when decoding; 1 means greedy decoding.", **_upto(MAX_BEAM_SIZE)),
    _int("bleu_sample_size", 0, "Validation pairs decoded to compute BLEU at each checkpoint; "
         "0 = no BLEU, -1 = the whole validation set.", minimum=0, special=(-1,)),
    _int("bucket_width", 10, "Width of the sequence-length buckets used to batch similar lengths.", **_POS),
    _bool("bucketing_enabled", True, "Batch sentence pairs of similar length together (less padding)."),
    _int("checkpoint_frequency_num_batches", 1000, "Evaluate on the validation set and write a "
         "checkpoint every N batches.", **_POS),
    _int("checkpoint_threshold", 3, "Stop early after this many checkpoints without improvement "
         "of optimized_metric.", **_POS),
    _float("clip_gradient", 1, "Clip gradients to this absolute value; 0 or a negative value "
           "disables clipping."),
    _choice("cnn_activation_type", "glu", _ACTIVATIONS, "Activation of the convolutional layers."),
    _float("cnn_hidden_dropout", 0, "Dropout between convolutional layers.", **_UNIT),
    _int("cnn_kernel_width_decoder", 5, "Kernel width of the convolutional decoder.",
         **_upto(MAX_KERNEL_WIDTH)),
    _int("cnn_kernel_width_encoder", 3, "Kernel width of the convolutional encoder.",
         **_upto(MAX_KERNEL_WIDTH)),
    _int("cnn_num_hidden", 512, "Hidden units of the convolutional encoder and decoder.", **_upto(MAX_UNITS)),
    _choice("decoder_type", "rnn", ("rnn", "cnn"), "Decoder architecture."),
    _float("embed_dropout_source", 0, "Dropout on the source embeddings.", **_UNIT),
    _float("embed_dropout_target", 0, "Dropout on the target embeddings.", **_UNIT),
    _choice("encoder_type", "rnn", ("rnn", "cnn"), "Encoder architecture."),
    _int("fixed_rate_lr_half_life", 10, "Half-life of the learning rate, in checkpoints, for the "
         "fixed_rate_* schedulers.", **_POS),
    _float("learning_rate", 0.0003, "Initial learning rate.", minimum=0.0, min_exclusive=True),
    _choice("loss_type", "cross-entropy", ("cross-entropy",), "Training loss."),
    _choice("lr_scheduler_type", "plateau_reduce",
            ("plateau_reduce", "fixed_rate_inv_t", "fixed_rate_inv_sqrt_t"),
            "Learning-rate schedule."),
    _int("max_num_batches", -1, "Stop after this many batches; -1 = unlimited.", minimum=1, special=(-1,)),
    _int("max_num_epochs", None, "Stop after this many epochs; unset = no epoch limit.", optional=True, **_POS),
    _int("min_num_epochs", 0, "Train at least this many epochs before early stopping may stop the "
         "job.", minimum=0),
    _int("max_seq_len_source", 100, "Longest source sequence in tokens; longer ones are truncated.",
         **_upto(MAX_SEQ_LEN)),
    _int("max_seq_len_target", 100, "Longest target sequence in tokens; longer ones are truncated.",
         **_upto(MAX_SEQ_LEN)),
    _float("momentum", None, "Momentum for optimizer_type=sgd (set it only with sgd); unset = "
           "no momentum.", optional=True, minimum=0.0),
    _int("num_embed_source", 512, "Source embedding size.", **_upto(MAX_UNITS)),
    _int("num_embed_target", 512, "Target embedding size.", **_upto(MAX_UNITS)),
    _int("num_layers_decoder", 1, "Decoder layers.", **_upto(MAX_LAYERS)),
    _int("num_layers_encoder", 1, "Encoder layers (the first RNN layer is bidirectional).", **_upto(MAX_LAYERS)),
    _choice("optimized_metric", "perplexity", ("perplexity", "accuracy", "bleu"),
            "Validation metric used for early stopping and to pick the best checkpoint."),
    _choice("optimizer_type", "adam", ("adam", "sgd", "rmsprop"), "Optimizer."),
    _float("plateau_reduce_lr_factor", 0.5, "Multiply the learning rate by this factor when "
           "optimized_metric stops improving (plateau_reduce); 1 keeps the rate.", minimum=0.0, maximum=1.0,
           min_exclusive=True),
    _int("plateau_reduce_lr_threshold", 3, "Checkpoints without improvement before plateau_reduce "
         "lowers the learning rate.", **_POS),
    _bool("rnn_attention_in_upper_layers", True, "Feed the attention context to the upper decoder "
          "layers too (no effect with a single decoder layer)."),
    _int("rnn_attention_num_hidden", None, "Hidden units of the attention layer; defaults to "
         "rnn_num_hidden.", default_from="rnn_num_hidden", **_upto(MAX_UNITS)),
    _choice("rnn_attention_type", "mlp", ("dot", "fixed", "mlp", "bilinear"), "Attention mechanism."),
    _choice("rnn_cell_type", "lstm", ("lstm", "gru"), "Recurrent cell."),
    _float("rnn_decoder_hidden_dropout", 0, "Dropout on the decoder's hidden state.", **_UNIT),
    _choice("rnn_decoder_state_init", "last", ("last", "avg", "zero"),
            "How the decoder's initial state is built from the encoder."),
    _int("rnn_first_residual_layer", 2, "First layer (1-based) that gets a residual connection when "
         "rnn_residual_connections is true.", **_POS),
    _int("rnn_num_hidden", 1024, "Hidden units of the RNN layers; even, because the first encoder "
         "layer is bidirectional with half the units per direction.", even=True, minimum=2,
         maximum=MAX_UNITS),
    _bool("rnn_residual_connections", False, "Add residual connections between stacked RNN layers "
          "(no effect with a single layer)."),
    _choice("training_metric", "perplexity", ("perplexity", "accuracy"), "Metric logged on training batches."),
    _float("weight_decay", 0, "L2 weight decay.", minimum=0.0),
    _float("weight_init_scale", 2.34, "Scale of the weight initialisation (uniform and xavier).",
           minimum=0.0, min_exclusive=True),
    _choice("weight_init_type", "xavier", ("uniform", "xavier"), "Weight initialisation."),
    _choice("xavier_factor_type", "in", ("in", "out", "avg"), "Fan used by xavier initialisation."),
    # -- extensions beyond the built-in algorithm (defaults keep built-in behaviour) ------------------
    _int("seed", 1, "Random seed for initialisation, shuffling and dropout.", minimum=0,
         maximum=2**32 - 1, extension=True),
    _choice("mixed_precision", "auto", ("auto", "bf16", "fp16", "off"), "Mixed-precision training: "
            "auto = bf16 on GPUs that support it, off on CPU (set bf16 on CPUs with native bfloat16, "
            "AVX512-BF16 or AMX: about 1.65x faster there, see BENCHMARKS.md).", extension=True),
    _float("label_smoothing", 0, "Label smoothing of the cross-entropy loss.", minimum=0.0, maximum=1.0,
           max_exclusive=True, extension=True),
    _float("length_penalty_alpha", 1.0, "Length penalty exponent for beam search: "
           "lp(len) = ((beta + len) / (beta + 1)) ** alpha; 0 disables.", minimum=0.0, extension=True),
    _float("length_penalty_beta", 0.0, "Length penalty offset for beam search (see "
           "length_penalty_alpha).", minimum=0.0, extension=True),
)

#: name -> :class:`HyperparameterSpec`, in table order (built-in names, then extensions).
SCHEMA: Mapping[str, HyperparameterSpec] = MappingProxyType({s.name: s for s in _SPECS})

#: The names that extend the built-in algorithm.
EXTENSION_NAMES: tuple[str, ...] = tuple(s.name for s in _SPECS if s.extension)

_DEFAULTS: dict[str, Any] = {s.name: s.default for s in _SPECS}


def _unknown_name_error(name: Any) -> HyperparameterError:
    if not isinstance(name, str):
        return HyperparameterError(f"hyperparameter names must be strings, got {_shown(name)}. "
                                   "Use the names listed by Hyperparameters.names().", name=_shown(name))
    hint = _did_you_mean(name, SCHEMA) or _did_you_mean(name.lower().strip().replace("-", "_"), SCHEMA)
    message = f"unknown hyperparameter {_shown(name)}" + (f"; {hint}" if hint else ".")
    message += " Valid names are listed by Hyperparameters.names() (or s2s_aws.hyperparameters.describe())."
    return HyperparameterError(message, name=name, allowed="a name from Hyperparameters.names()")


def _example(spec: HyperparameterSpec) -> str:
    if spec.default is not None:
        return spec.to_string(spec.default)
    return spec.to_string(spec.minimum if spec.kind == "float" else int(spec.minimum or 1))


def _combine(errors: list[HyperparameterError]) -> HyperparameterError:
    if len(errors) == 1:
        err = errors[0]
    else:
        lines = "\n".join(f"  - {e}" for e in errors)
        err = HyperparameterError(f"{len(errors)} hyperparameter problems:\n{lines}")
    err.errors = tuple(errors)  # type: ignore[attr-defined]
    return err


def _cross_check(explicit: Mapping[str, Any], resolved: Mapping[str, Any]) -> list[HyperparameterError]:
    """Rules between fields that the built-in algorithm enforces too; every problem found, each
    naming the fields involved. (Combinations the built-in accepts are never an error here: see
    :func:`_notes` for how the training program reads them.)"""
    problems: list[HyperparameterError] = []
    if "momentum" in explicit and explicit["momentum"] is not None and resolved["optimizer_type"] != "sgd":
        problems.append(HyperparameterError(
            f"hyperparameter momentum={explicit['momentum']!r} only applies to optimizer_type=sgd, but "
            f"optimizer_type is {resolved['optimizer_type']!r} (the built-in algorithm does not take "
            "momentum with adam or rmsprop either). Remove momentum, or set optimizer_type=sgd.",
            name="momentum", value=explicit["momentum"], allowed="only with optimizer_type=sgd"))
    max_epochs = resolved["max_num_epochs"]
    if max_epochs is not None and resolved["min_num_epochs"] > max_epochs:
        problems.append(HyperparameterError(
            f"hyperparameter min_num_epochs={resolved['min_num_epochs']} is greater than "
            f"max_num_epochs={max_epochs}. Lower min_num_epochs or raise max_num_epochs.",
            name="min_num_epochs", value=resolved["min_num_epochs"], allowed=f"an integer <= {max_epochs}"))
    return problems


#: Which architecture part each rnn_*/cnn_* name configures: (encoder side applies, decoder side applies).
_PART_NAMES: dict[str, tuple[str, bool, bool]] = {
    "rnn_num_hidden": ("rnn", True, True), "rnn_cell_type": ("rnn", True, True),
    "rnn_residual_connections": ("rnn", True, True), "rnn_first_residual_layer": ("rnn", True, True),
    "rnn_attention_type": ("rnn", False, True), "rnn_attention_num_hidden": ("rnn", False, True),
    "rnn_attention_in_upper_layers": ("rnn", False, True), "rnn_decoder_state_init": ("rnn", False, True),
    "rnn_decoder_hidden_dropout": ("rnn", False, True),
    "cnn_num_hidden": ("cnn", True, True), "cnn_activation_type": ("cnn", True, True),
    "cnn_hidden_dropout": ("cnn", True, True), "cnn_kernel_width_encoder": ("cnn", True, False),
    "cnn_kernel_width_decoder": ("cnn", False, True),
}

#: Names that only matter for some values of another name: name -> (other name, values).
_APPLIES_WITH: dict[str, tuple[str, tuple[str, ...]]] = {
    "plateau_reduce_lr_factor": ("lr_scheduler_type", ("plateau_reduce",)),
    "plateau_reduce_lr_threshold": ("lr_scheduler_type", ("plateau_reduce",)),
    "fixed_rate_lr_half_life": ("lr_scheduler_type", ("fixed_rate_inv_t", "fixed_rate_inv_sqrt_t")),
    "xavier_factor_type": ("weight_init_type", ("xavier",)),
}


def _notes(explicit: Mapping[str, Any], resolved: Mapping[str, Any]) -> list[str]:
    """One line for each accepted combination that the training program reads in a way worth saying."""
    notes: list[str] = []
    r = resolved
    if r["optimized_metric"] == "bleu" and r["bleu_sample_size"] == 0:
        notes.append("optimized_metric=bleu with bleu_sample_size=0: BLEU is computed on the whole validation "
                     "set at every checkpoint (as the built-in algorithm does); set bleu_sample_size to N > 0 "
                     "to decode only the first N validation pairs.")
    if "clip_gradient" in explicit and r["clip_gradient"] == 0:
        notes.append("clip_gradient=0: gradient clipping is off (as in the built-in algorithm, a value <= 0 "
                     "disables clipping).")
    sides = {"encoder": r["encoder_type"], "decoder": r["decoder_type"]}
    unused = [name for name, (part, enc, dec) in _PART_NAMES.items() if name in explicit
              and not ((enc and sides["encoder"] == part) or (dec and sides["decoder"] == part))]
    if unused:
        notes.append(f"{', '.join(unused)} {'has' if len(unused) == 1 else 'have'} no effect with "
                     f"encoder_type={sides['encoder']} and decoder_type={sides['decoder']}.")
    rnn_layers = [r[f"num_layers_{side}"] for side in sides if sides[side] == "rnn"]
    if r["rnn_residual_connections"] and rnn_layers and "rnn_residual_connections" not in unused:
        top = max(rnn_layers)
        if top < 2:
            notes.append("rnn_residual_connections=true has no effect: every RNN stack has a single layer "
                         "(residual connections join stacked layers; set num_layers_encoder or "
                         "num_layers_decoder to 2 or more).")
        elif r["rnn_first_residual_layer"] > top:
            notes.append(f"rnn_residual_connections=true has no effect: rnn_first_residual_layer="
                         f"{r['rnn_first_residual_layer']} is above the top RNN layer ({top}).")
    if explicit.get("rnn_attention_in_upper_layers") and sides["decoder"] == "rnn" and r["num_layers_decoder"] < 2:
        notes.append("rnn_attention_in_upper_layers=true has no effect with num_layers_decoder=1 (there are "
                     "no upper decoder layers).")
    for name, (other, values) in _APPLIES_WITH.items():
        if name in explicit and r[other] not in values:
            notes.append(f"{name} has no effect with {other}={r[other]} (it applies to "
                         f"{' and '.join(f'{other}={v}' for v in values)}).")
    return notes


class Hyperparameters:
    """A validated, immutable set of hyperparameters.

    Build one with :meth:`from_strings` (SageMaker's string form), :meth:`from_dict` (python values
    or strings) or ``Hyperparameters(batch_size=32, ...)``. Read values as attributes
    (``hp.batch_size``); every name in :data:`SCHEMA` is available, resolved (defaults applied,
    ``rnn_attention_num_hidden`` following ``rnn_num_hidden``; unset optionals are ``None``).
    """

    __slots__ = ("_explicit", "_resolved")

    # attribute types for editors and type checkers (annotations only: values come from __getattr__)
    batch_size: int
    beam_size: int
    bleu_sample_size: int
    bucket_width: int
    bucketing_enabled: bool
    checkpoint_frequency_num_batches: int
    checkpoint_threshold: int
    clip_gradient: float
    cnn_activation_type: str
    cnn_hidden_dropout: float
    cnn_kernel_width_decoder: int
    cnn_kernel_width_encoder: int
    cnn_num_hidden: int
    decoder_type: str
    embed_dropout_source: float
    embed_dropout_target: float
    encoder_type: str
    fixed_rate_lr_half_life: int
    learning_rate: float
    loss_type: str
    lr_scheduler_type: str
    max_num_batches: int
    max_num_epochs: int | None
    min_num_epochs: int
    max_seq_len_source: int
    max_seq_len_target: int
    momentum: float | None
    num_embed_source: int
    num_embed_target: int
    num_layers_decoder: int
    num_layers_encoder: int
    optimized_metric: str
    optimizer_type: str
    plateau_reduce_lr_factor: float
    plateau_reduce_lr_threshold: int
    rnn_attention_in_upper_layers: bool
    rnn_attention_num_hidden: int
    rnn_attention_type: str
    rnn_cell_type: str
    rnn_decoder_hidden_dropout: float
    rnn_decoder_state_init: str
    rnn_first_residual_layer: int
    rnn_num_hidden: int
    rnn_residual_connections: bool
    training_metric: str
    weight_decay: float
    weight_init_scale: float
    weight_init_type: str
    xavier_factor_type: str
    seed: int
    mixed_precision: str
    label_smoothing: float
    length_penalty_alpha: float
    length_penalty_beta: float

    def __init__(self, **values: Any) -> None:
        explicit, resolved = self._validate(values, ignore_reserved=False, strings_only=False)
        object.__setattr__(self, "_explicit", explicit)
        object.__setattr__(self, "_resolved", resolved)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_strings(cls, values: Mapping[str, str], *, ignore_reserved: bool = True) -> Hyperparameters:
        """Parse SageMaker's string form (the content of ``hyperparameters.json``).

        Every value must be a string. Names starting with :data:`RESERVED_PREFIXES` are skipped
        when ``ignore_reserved`` is true. All problems are reported in one
        :class:`HyperparameterError`, one per line.
        """
        return cls._build(values, ignore_reserved=ignore_reserved, strings_only=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, ignore_reserved: bool = False) -> Hyperparameters:
        """Build from python values or strings (``{"batch_size": 32}`` or ``{"batch_size": "32"}``).

        A value of ``None`` means "not set" (so ``from_dict(hp.as_dict())`` works).
        """
        return cls._build(values, ignore_reserved=ignore_reserved, strings_only=False)

    @classmethod
    def _build(cls, values: Mapping[str, Any], *, ignore_reserved: bool, strings_only: bool) -> Hyperparameters:
        if not isinstance(values, Mapping):
            raise HyperparameterError(
                f"hyperparameters must be a mapping of name -> value, got {type(values).__name__}. "
                "Pass a dict such as {'batch_size': '32'}.")
        explicit, resolved = cls._validate(values, ignore_reserved=ignore_reserved, strings_only=strings_only)
        obj = cls.__new__(cls)
        object.__setattr__(obj, "_explicit", explicit)
        object.__setattr__(obj, "_resolved", resolved)
        return obj

    @staticmethod
    def _validate(values: Mapping[str, Any], *, ignore_reserved: bool,
                  strings_only: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        errors: list[HyperparameterError] = []
        parsed: dict[str, Any] = {}
        for name, raw in values.items():
            spec = SCHEMA.get(name) if isinstance(name, str) else None
            if spec is None:
                if ignore_reserved and isinstance(name, str) and name.startswith(RESERVED_PREFIXES):
                    logger.debug("ignoring reserved SageMaker hyperparameter %s", name)
                    continue
                errors.append(_unknown_name_error(name))
                continue
            if strings_only and not isinstance(raw, str):
                errors.append(HyperparameterError(
                    f"hyperparameter {name}={_shown(raw)} must be given as a string (SageMaker passes "
                    f"every value as a string), e.g. {_example(spec)!r}. "
                    "Use Hyperparameters.from_dict for python values.",
                    name=name, value=raw, allowed=spec.allowed))
                continue
            if raw is None:
                continue
            try:
                parsed[name] = spec.parse(raw)
            except HyperparameterError as e:
                errors.append(e)
        if errors:
            raise _combine(errors)
        explicit = {name: parsed[name] for name in SCHEMA if name in parsed}  # schema order
        resolved = dict(_DEFAULTS)
        resolved.update(explicit)
        for spec in _SPECS:
            if spec.default_from is not None and resolved[spec.name] is None:
                resolved[spec.name] = resolved[spec.default_from]
        problems = _cross_check(explicit, resolved)
        if problems:
            raise _combine(problems)
        return explicit, resolved

    def replace(self, **changes: Any) -> Hyperparameters:
        """A new object with ``changes`` applied on top of the explicitly set values.

        A value of ``None`` un-sets a name (back to its default).
        """
        merged: dict[str, Any] = dict(self._explicit)
        merged.update(changes)
        return type(self).from_dict(merged)

    # -- reading -----------------------------------------------------------------------------------
    @staticmethod
    def names() -> list[str]:
        """Every hyperparameter name, in table order (built-in names, then extensions)."""
        return list(SCHEMA)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # slots not filled yet (copy, unpickling) must not recurse
            raise AttributeError(name)
        try:
            return self._resolved[name]
        except KeyError:
            hint = _did_you_mean(name, SCHEMA)
            raise AttributeError(f"no hyperparameter named {name!r}" + (f"; {hint}" if hint else "")) from None

    def notes(self) -> list[str]:
        """One line for each accepted combination that training reads in a way worth saying: e.g.
        ``optimized_metric=bleu`` with ``bleu_sample_size=0`` computes BLEU on the whole validation
        set; a setting of an architecture part that is not used has no effect. The training program
        logs them once at start."""
        return _notes(self._explicit, self._resolved)

    @property
    def effective_bleu_sample_size(self) -> int:
        """Validation pairs decoded for BLEU at each checkpoint: 0 = none, -1 = all (``-1`` when
        ``optimized_metric=bleu`` and ``bleu_sample_size`` is 0)."""
        value = int(self._resolved["bleu_sample_size"])
        return -1 if value == 0 and self._resolved["optimized_metric"] == "bleu" else value

    @property
    def effective_clip_gradient(self) -> float | None:
        """The clipping threshold, or None when clipping is off (``clip_gradient`` <= 0)."""
        value = float(self._resolved["clip_gradient"])
        return value if value > 0 else None

    def is_set(self, name: str) -> bool:
        """Whether ``name`` was given explicitly (rather than taken from its default)."""
        if name not in SCHEMA:
            raise _unknown_name_error(name)
        return name in self._explicit

    def to_strings(self, include_defaults: bool = False) -> dict[str, str]:
        """The canonical string form, as SageMaker expects it.

        By default only the explicitly set names (so ``from_strings(x).to_strings() == x`` for
        canonical ``x``); with ``include_defaults=True`` every name, resolved, leaving out the
        optional names that are unset (``max_num_epochs``, ``momentum``).
        """
        source = self._resolved if include_defaults else self._explicit
        return {name: SCHEMA[name].to_string(value) for name, value in source.items() if value is not None}

    def as_dict(self) -> dict[str, Any]:
        """Every name, resolved, as python values (unset optionals are ``None``)."""
        return dict(self._resolved)

    # -- value object ------------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Hyperparameters are immutable; use hp.replace({name}=...) for a changed copy")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Hyperparameters are immutable; use hp.replace(name=None) to unset a name")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hyperparameters):
            return NotImplemented
        return self._resolved == other._resolved

    def __hash__(self) -> int:
        return hash(tuple(self._resolved.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._explicit.items())
        return f"Hyperparameters({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).from_strings, (self.to_strings(),))


def describe(names: list[str] | None = None) -> str:
    """A plain-text table of the schema (name, type, default, allowed values, help) for the CLI."""
    specs = [SCHEMA[n] for n in names] if names is not None else list(_SPECS)
    rows = [("name", "type", "default", "allowed", "description")]
    for s in specs:
        rows.append((s.name, s.type_name, s.default_text, s.allowed,
                     s.help + (" [extension]" if s.extension else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for r in rows:
        lines.append("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(rows[0][4]))
    return "\n".join(lines)
