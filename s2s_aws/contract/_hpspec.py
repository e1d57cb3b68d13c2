"""The machinery of the hyperparameter schema: one hyperparameter's spec (type, default, bounds,
help), its parsing and messages, the declaration helper, and the one boolean parser.

The schema itself, the one declaration of every name, is the body of
:class:`s2s_aws.contract.hyperparameters.Hyperparameters`: each attribute there is declared as
``name: <type> = declare(default, help, ...)``. The annotation gives the type (``int``, ``float``,
``bool``; ``str`` with ``choices``; ``| None`` = optional, unset unless given), so what type checkers
see and what the parser checks cannot drift apart.
"""
from __future__ import annotations

import difflib
import math
import numbers
import re
import reprlib
from dataclasses import dataclass
from typing import Any

from ..errors import HyperparameterError

__all__ = ["HyperparameterSpec", "TRUE_WORDS", "FALSE_WORDS", "parse_bool", "declare"]

_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

#: The boolean vocabulary of the contract (any case, surrounding blanks ignored); canonical: true/false.
TRUE_WORDS: frozenset[str] = frozenset({"true", "1"})
FALSE_WORDS: frozenset[str] = frozenset({"false", "0"})


def parse_bool(text: str) -> bool:
    """The contract's boolean: ``true``/``false`` or ``1``/``0``, in any case, blanks ignored.

    Raises :class:`ValueError` for anything else (callers say where the value came from).
    """
    low = text.strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    raise ValueError(f"{shown(text)} is not a boolean: expected true or false (or 1 or 0)")


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
    def annotation(self) -> str:
        """The python type of the resolved value, as an annotation string (``int``, ``float | None``)."""
        return self.type_name + (" | None" if self.optional else "")

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
        message = f"hyperparameter {self.name}={shown(value)} is not allowed: expected {self.allowed}"
        if extra:
            message += f" ({extra})"
        message += f". Fix the value, or leave {self.name} out to use the default ({self.default_text})."
        return HyperparameterError(message, name=self.name, value=value, allowed=self.allowed)

    def _convert(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._convert_string(value)
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
                return int(value)  # type: ignore[call-overload]  # a Real has __int__ (numbers.Real.__trunc__)
            raise self._error(value)
        if isinstance(value, numbers.Real) and math.isfinite(value):
            return float(value)
        raise self._error(value)

    def _convert_string(self, value: str) -> Any:
        text = value.strip()
        if self.kind == "bool":
            try:
                return parse_bool(text)
            except ValueError:
                raise self._error(value) from None
        if self.kind == "choice":
            low = text.lower()
            if low in self.choices:
                return low
            raise self._error(value, did_you_mean(low, self.choices))
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


# -- the declaration of a hyperparameter in the body of Hyperparameters -----------------------------
#: annotation (as written in the class body) -> (kind, optional)
_ANNOTATIONS: dict[str, tuple[str, bool]] = {
    "int": ("int", False), "float": ("float", False), "bool": ("bool", False), "str": ("choice", False),
    "int | None": ("int", True), "float | None": ("float", True),
}


class _Declared:
    """A hyperparameter declared in a class body. On the class it is the :class:`HyperparameterSpec`
    (``Hyperparameters.batch_size.default``); on an instance, the resolved value."""

    __slots__ = ("spec", "_args")

    def __init__(self, default: Any, help: str, options: dict[str, Any]) -> None:
        self._args = (default, help, options)
        self.spec: HyperparameterSpec | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        default, help, options = self._args
        annotation = owner.__dict__.get("__annotations__", {}).get(name)
        if annotation not in _ANNOTATIONS:
            raise TypeError(f"hyperparameter {name}: annotate it with one of {', '.join(_ANNOTATIONS)} "
                            f"(got {annotation!r})")
        kind, optional = _ANNOTATIONS[annotation]
        if (kind == "choice") != bool(options.get("choices")):
            raise TypeError(f"hyperparameter {name}: a str hyperparameter needs choices=(...), and only it")
        if default is None and not optional and options.get("default_from") is None:
            raise TypeError(f"hyperparameter {name}: a default of None needs '{annotation} | None' "
                            "(optional) or default_from=<another name>")
        if kind == "float" and default is not None:
            default = float(default)
        self.spec = HyperparameterSpec(name, kind, default, help, optional=optional, **options)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self.spec
        return obj._resolved[self.spec.name]  # type: ignore[union-attr]


def declare(default: Any, help: str, **options: Any) -> Any:
    """Declare one hyperparameter in the body of ``Hyperparameters``: ``name: int = declare(64, "...",
    minimum=1)``. ``options`` are :class:`HyperparameterSpec` fields (``choices``, ``minimum``,
    ``maximum``, ``min_exclusive``, ``max_exclusive``, ``special``, ``excluded``, ``even``,
    ``default_from``, ``extension``); the name comes from the attribute, the kind and ``optional``
    from its annotation. Typed ``Any`` so that type checkers see the annotated type."""
    return _Declared(default, help, options)


def specs_of(cls: type) -> tuple[HyperparameterSpec, ...]:
    """The specs declared in ``cls``'s body, in declaration order."""
    found = [v.spec for v in vars(cls).values() if isinstance(v, _Declared)]
    return tuple(s for s in found if s is not None)


# -- message helpers ------------------------------------------------------------------------------
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 120, 120
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6


def shown(value: Any) -> str:
    """``repr(value)`` for messages: bounded in length and depth (a value may be a 100k-deep list)."""
    return _SHORT.repr(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def did_you_mean(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""
