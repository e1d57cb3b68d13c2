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

The one declaration: every name is declared once, as an annotated attribute of
:class:`Hyperparameters` (``batch_size: int = declare(64, "...", minimum=1, maximum=65536)``). From
it come the parsing and validation (:data:`SCHEMA`), the typed attributes users' type checkers see,
the listing (:func:`describe_rows`, :func:`describe`) and the container's model configuration
(``s2s_algorithm.config.ModelConfig`` takes its fields, types and defaults from :data:`SCHEMA`).
:func:`parse_bool` is the contract's one boolean parser.
"""
from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from ..errors import HyperparameterError
from ._hpspec import FALSE_WORDS, TRUE_WORDS, HyperparameterSpec, declare, did_you_mean, parse_bool, shown, specs_of

__all__ = [
    "Hyperparameters",
    "HyperparameterSpec",
    "HyperparameterRow",
    "SCHEMA",
    "EXTENSION_NAMES",
    "RESERVED_PREFIXES",
    "TRUE_WORDS",
    "FALSE_WORDS",
    "describe",
    "describe_rows",
    "parse_bool",
]

logger = logging.getLogger(__name__)

#: Name prefixes SageMaker (or its SDK) may add to a job's hyperparameters; never ours.
RESERVED_PREFIXES: tuple[str, ...] = ("sagemaker_", "_")

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


class Hyperparameters:
    """A validated, immutable set of hyperparameters.

    Build one with :meth:`from_strings` (SageMaker's string form), :meth:`from_dict` (python values
    or strings) or ``Hyperparameters(batch_size=32, ...)``. Read values as attributes
    (``hp.batch_size``); every name in :data:`SCHEMA` is available, resolved (defaults applied,
    ``rnn_attention_num_hidden`` following ``rnn_num_hidden``; unset optionals are ``None``).

    The class body below is the schema: one annotated declaration per name (see
    :func:`~s2s_aws.contract._hpspec.declare`). On the class, an attribute is its
    :class:`HyperparameterSpec` (``Hyperparameters.batch_size.maximum == 65536``).
    """

    __slots__ = ("_explicit", "_resolved")

    # -- the schema: one declaration per name; the annotation is the type ---------------------------
    # -- the built-in algorithm's names (CONTRACT.md), alphabetical --------------------------------
    batch_size: int = declare(64, "Sentence pairs per mini-batch (per device).", **_upto(MAX_BATCH_SIZE))
    beam_size: int = declare(5, "Beam width used when decoding; 1 means greedy decoding.", **_upto(MAX_BEAM_SIZE))
    bleu_sample_size: int = declare(0, "Validation pairs decoded to compute BLEU at each checkpoint; "
                                    "0 = no BLEU, -1 = the whole validation set.", minimum=0, special=(-1,))
    bucket_width: int = declare(10, "Width of the sequence-length buckets used to batch similar lengths.", **_POS)
    bucketing_enabled: bool = declare(True, "Batch sentence pairs of similar length together (less padding).")
    checkpoint_frequency_num_batches: int = declare(1000, "Evaluate on the validation set and write a "
                                                    "checkpoint every N batches.", **_POS)
    checkpoint_threshold: int = declare(3, "Stop early after this many checkpoints without improvement "
                                        "of optimized_metric.", **_POS)
    clip_gradient: float = declare(1, "Clip gradients to this absolute value; 0 or a negative value "
                                   "disables clipping.")
    cnn_activation_type: str = declare("glu", "Activation of the convolutional layers.", choices=_ACTIVATIONS)
    cnn_hidden_dropout: float = declare(0, "Dropout between convolutional layers.", **_UNIT)
    cnn_kernel_width_decoder: int = declare(5, "Kernel width of the convolutional decoder.",
                                            **_upto(MAX_KERNEL_WIDTH))
    cnn_kernel_width_encoder: int = declare(3, "Kernel width of the convolutional encoder.",
                                            **_upto(MAX_KERNEL_WIDTH))
    cnn_num_hidden: int = declare(512, "Hidden units of the convolutional encoder and decoder.", **_upto(MAX_UNITS))
    decoder_type: str = declare("rnn", "Decoder architecture (transformer: an extension value, with "
                                "encoder_type=transformer).", choices=("rnn", "cnn", "transformer"))
    embed_dropout_source: float = declare(0, "Dropout on the source embeddings.", **_UNIT)
    embed_dropout_target: float = declare(0, "Dropout on the target embeddings.", **_UNIT)
    encoder_type: str = declare("rnn", "Encoder architecture (transformer: an extension value, with "
                                "decoder_type=transformer).", choices=("rnn", "cnn", "transformer"))
    fixed_rate_lr_half_life: int = declare(10, "Half-life of the learning rate, in checkpoints, for the "
                                           "fixed_rate_* schedulers.", **_POS)
    learning_rate: float = declare(0.0003, "Initial learning rate.", minimum=0.0, min_exclusive=True)
    loss_type: str = declare("cross-entropy", "Training loss.", choices=("cross-entropy",))
    lr_scheduler_type: str = declare("plateau_reduce", "Learning-rate schedule.",
                                     choices=("plateau_reduce", "fixed_rate_inv_t", "fixed_rate_inv_sqrt_t"))
    max_num_batches: int = declare(-1, "Stop after this many batches; -1 = unlimited.", minimum=1, special=(-1,))
    max_num_epochs: int | None = declare(None, "Stop after this many epochs; unset = no epoch limit.", **_POS)
    min_num_epochs: int = declare(0, "Train at least this many epochs before early stopping may stop the "
                                  "job.", minimum=0)
    max_seq_len_source: int = declare(100, "Longest source sequence in tokens; longer ones are truncated.",
                                      **_upto(MAX_SEQ_LEN))
    max_seq_len_target: int = declare(100, "Longest target sequence in tokens; longer ones are truncated.",
                                      **_upto(MAX_SEQ_LEN))
    momentum: float | None = declare(None, "Momentum for optimizer_type=sgd (set it only with sgd); unset = "
                                     "no momentum.", minimum=0.0)
    num_embed_source: int = declare(512, "Source embedding size.", **_upto(MAX_UNITS))
    num_embed_target: int = declare(512, "Target embedding size.", **_upto(MAX_UNITS))
    num_layers_decoder: int = declare(1, "Decoder layers.", **_upto(MAX_LAYERS))
    num_layers_encoder: int = declare(1, "Encoder layers (the first RNN layer is bidirectional).",
                                      **_upto(MAX_LAYERS))
    optimized_metric: str = declare("perplexity", "Validation metric used for early stopping and to pick the "
                                    "best checkpoint.", choices=("perplexity", "accuracy", "bleu"))
    optimizer_type: str = declare("adam", "Optimizer.", choices=("adam", "sgd", "rmsprop"))
    plateau_reduce_lr_factor: float = declare(0.5, "Multiply the learning rate by this factor when "
                                              "optimized_metric stops improving (plateau_reduce); 1 keeps the "
                                              "rate.", minimum=0.0, maximum=1.0, min_exclusive=True)
    plateau_reduce_lr_threshold: int = declare(3, "Checkpoints without improvement before plateau_reduce "
                                               "lowers the learning rate.", **_POS)
    rnn_attention_in_upper_layers: bool = declare(True, "Feed the attention context to the upper decoder "
                                                  "layers too (no effect with a single decoder layer).")
    rnn_attention_num_hidden: int = declare(None, "Hidden units of the attention layer; defaults to "
                                            "rnn_num_hidden.", default_from="rnn_num_hidden", **_upto(MAX_UNITS))
    rnn_attention_type: str = declare("mlp", "Attention mechanism.", choices=("dot", "fixed", "mlp", "bilinear"))
    rnn_cell_type: str = declare("lstm", "Recurrent cell.", choices=("lstm", "gru"))
    rnn_decoder_hidden_dropout: float = declare(0, "Dropout on the decoder's hidden state.", **_UNIT)
    rnn_decoder_state_init: str = declare("last", "How the decoder's initial state is built from the encoder.",
                                          choices=("last", "avg", "zero"))
    rnn_first_residual_layer: int = declare(2, "First layer (1-based) that gets a residual connection when "
                                            "rnn_residual_connections is true.", **_POS)
    rnn_num_hidden: int = declare(1024, "Hidden units of the RNN layers; even, because the first encoder "
                                  "layer is bidirectional with half the units per direction.", even=True,
                                  minimum=2, maximum=MAX_UNITS)
    rnn_residual_connections: bool = declare(False, "Add residual connections between stacked RNN layers "
                                             "(no effect with a single layer).")
    training_metric: str = declare("perplexity", "Metric logged on training batches.",
                                   choices=("perplexity", "accuracy"))
    weight_decay: float = declare(0, "L2 weight decay.", minimum=0.0)
    weight_init_scale: float = declare(2.34, "Scale of the weight initialisation (uniform and xavier).",
                                       minimum=0.0, min_exclusive=True)
    weight_init_type: str = declare("xavier", "Weight initialisation.", choices=("uniform", "xavier"))
    xavier_factor_type: str = declare("in", "Fan used by xavier initialisation.", choices=("in", "out", "avg"))
    # -- extensions beyond the built-in algorithm (defaults keep built-in behaviour) ------------------
    seed: int = declare(1, "Random seed for initialisation, shuffling and dropout.", minimum=0,
                        maximum=2**32 - 1, extension=True)
    mixed_precision: str = declare("auto", "Mixed-precision training: auto = bf16 on GPUs that support it, off "
                                   "on CPU (set bf16 on CPUs with native bfloat16, AVX512-BF16 or AMX: about "
                                   "1.65x faster there, see BENCHMARKS.md).",
                                   choices=("auto", "bf16", "fp16", "off"), extension=True)
    label_smoothing: float = declare(0, "Label smoothing of the cross-entropy loss.", minimum=0.0, maximum=1.0,
                                     max_exclusive=True, extension=True)
    length_penalty_alpha: float = declare(1.0, "Length penalty exponent for beam search: "
                                          "lp(len) = ((beta + len) / (beta + 1)) ** alpha; 0 disables.",
                                          minimum=0.0, extension=True)
    length_penalty_beta: float = declare(0.0, "Length penalty offset for beam search (see "
                                         "length_penalty_alpha).", minimum=0.0, extension=True)
    transformer_model_size: int = declare(512, "Width of the transformer's layers and embeddings (the "
                                          "transformer ignores num_embed_*); divisible by "
                                          "transformer_attention_heads.", extension=True, **_upto(MAX_UNITS))
    transformer_attention_heads: int = declare(8, "Attention heads of every transformer attention layer.",
                                               extension=True, **_upto(1024))
    transformer_feed_forward_num_hidden: int = declare(2048, "Hidden units of the transformer's feed-forward "
                                                       "layers.", extension=True, **_upto(4 * MAX_UNITS))
    transformer_dropout_attention: float = declare(0.1, "Dropout on the transformer's attention weights.",
                                                   extension=True, **_UNIT)
    transformer_dropout_act: float = declare(0.1, "Dropout after the activation of the transformer's "
                                             "feed-forward layers.", extension=True, **_UNIT)
    transformer_dropout_prepost: float = declare(0.1, "Dropout on every transformer sub-layer's output "
                                                 "(before the residual sum) and on the embeddings.",
                                                 extension=True, **_UNIT)
    transformer_positional_embedding_type: str = declare("fixed", "Positions of the transformer: fixed "
                                                         "(sinusoidal) or learned.", choices=("fixed", "learned"),
                                                         extension=True)
    weight_tying_type: str = declare("none", "Tie embeddings (transformer only): trg_softmax = the target "
                                     "embedding is the output layer's weight; src_trg_softmax also shares it "
                                     "with the source embedding (needs equal vocabulary sizes).",
                                     choices=("none", "trg_softmax", "src_trg_softmax"), extension=True)

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
                    f"hyperparameter {name}={shown(raw)} must be given as a string (SageMaker passes "
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
            hint = did_you_mean(name, SCHEMA)
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


#: name -> :class:`HyperparameterSpec`, in table order (built-in names, then extensions).
_SPECS: tuple[HyperparameterSpec, ...] = specs_of(Hyperparameters)
SCHEMA: Mapping[str, HyperparameterSpec] = MappingProxyType({s.name: s for s in _SPECS})

#: The names that extend the built-in algorithm.
EXTENSION_NAMES: tuple[str, ...] = tuple(s.name for s in _SPECS if s.extension)

_DEFAULTS: dict[str, Any] = {s.name: s.default for s in _SPECS}


def _unknown_name_error(name: Any) -> HyperparameterError:
    if not isinstance(name, str):
        return HyperparameterError(f"hyperparameter names must be strings, got {shown(name)}. "
                                   "Use the names listed by Hyperparameters.names().", name=shown(name))
    hint = did_you_mean(name, SCHEMA) or did_you_mean(name.lower().strip().replace("-", "_"), SCHEMA)
    message = f"unknown hyperparameter {shown(name)}" + (f"; {hint}" if hint else ".")
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
    sides = (resolved["encoder_type"], resolved["decoder_type"])
    if "transformer" in sides and sides[0] != sides[1]:
        problems.append(HyperparameterError(
            f"hyperparameters encoder_type={sides[0]} and decoder_type={sides[1]} cannot be mixed: the "
            "transformer runs on both sides only. Set both to transformer, or neither.",
            name="decoder_type" if sides[0] == "transformer" else "encoder_type",
            value=sides[1] if sides[0] == "transformer" else sides[0], allowed="transformer"))
    size, heads = resolved["transformer_model_size"], resolved["transformer_attention_heads"]
    if "transformer" in sides and size % heads:
        problems.append(HyperparameterError(
            f"hyperparameter transformer_model_size={size} is not divisible by transformer_attention_heads="
            f"{heads}. Pick a model size that is a multiple of the number of heads (e.g. "
            f"{max(heads, size // heads * heads)}).",
            name="transformer_model_size", value=size, allowed=f"a multiple of {heads}"))
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
    "transformer_model_size": ("transformer", True, True), "transformer_attention_heads": ("transformer", True, True),
    "transformer_feed_forward_num_hidden": ("transformer", True, True),
    "transformer_dropout_attention": ("transformer", True, True),
    "transformer_dropout_act": ("transformer", True, True), "transformer_dropout_prepost": ("transformer", True, True),
    "transformer_positional_embedding_type": ("transformer", True, True),
    "weight_tying_type": ("transformer", True, True),
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


class HyperparameterRow(NamedTuple):
    """One line of the schema listing, every field a display string (``extension`` excepted)."""

    name: str
    type: str          # int, float, bool or str
    default: str       # canonical string, "unset" or "= rnn_num_hidden"
    allowed: str       # the allowed values in words, as in error messages ("an integer in [1, 65536]")
    help: str
    extension: bool    # a name beyond the built-in algorithm's


def describe_rows(names: list[str] | None = None) -> list[HyperparameterRow]:
    """The schema as rows (name, type, default, allowed values, help, extension), in table order or
    in the order of ``names``: what a CLI listing or a documentation table needs."""
    specs = [SCHEMA[n] for n in names] if names is not None else list(_SPECS)
    return [HyperparameterRow(s.name, s.type_name, s.default_text, s.allowed, s.help, s.extension) for s in specs]


def describe(names: list[str] | None = None) -> str:
    """A plain-text table of the schema (name, type, default, allowed values, help) for the CLI."""
    rows = [("name", "type", "default", "allowed", "description")]
    for row in describe_rows(names):
        help = row.help + (" [extension]" if row.extension else "")
        rows.append((row.name, row.type, row.default, row.allowed, help))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for r in rows:
        lines.append("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(rows[0][4]))
    return "\n".join(lines)
