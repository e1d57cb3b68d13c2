"""Fuzzing hyperparameter strings (issue #9): SageMaker hands the training program a JSON object of
strings that anyone who can create a training job controls.

Property: ``Hyperparameters.from_strings`` returns a valid object, or raises
:class:`~s2s_aws.errors.HyperparameterError` naming a parameter — never another exception. An
accepted value survives the string form unchanged. ``S2S_FUZZ_EXAMPLES=N`` raises the counts.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s_aws.errors import HyperparameterError
from s2s_aws.contract.hyperparameters import SCHEMA, Hyperparameters

EXAMPLES = int(os.environ.get("S2S_FUZZ_EXAMPLES", "0") or 0)
NAMES = sorted(SCHEMA)


def fuzz_settings(default: int):
    return settings(max_examples=EXAMPLES or default, deadline=None, derandomize=not EXAMPLES,
                    suppress_health_check=[HealthCheck.too_slow])


number_like = st.one_of(
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(["", " ", "nan", "-inf", "1e999", "0x10", "1_000", "５", "+0", "-0", "1.", ".5", "2.34e",
                     "true", "False", "none", "\x00", "1" * 5000, "9" * 40, "1e-400", " 8 ", "8\n"]),
    st.text(max_size=12),
)
values = st.one_of(number_like, st.sampled_from(sorted({c for spec in SCHEMA.values() for c in (spec.choices or ())})))
names = st.one_of(st.sampled_from(NAMES), st.text(max_size=20), st.sampled_from(["sagemaker_program", "_tuning_objective_metric"]))


@fuzz_settings(300)
@given(st.dictionaries(names, values, max_size=6))
def test_from_strings_accepts_or_names_the_problem(raw):
    try:
        hp = Hyperparameters.from_strings(raw)
    except HyperparameterError as e:
        text = str(e)
        assert len(text) > 20
        assert any(name in text or repr(name) in text for name in raw), text  # names (one of) the offending parameters
    else:
        again = Hyperparameters.from_strings(hp.to_strings())
        assert again.as_dict() == hp.as_dict()
        for name in SCHEMA:
            value = getattr(hp, name)
            assert value is None or isinstance(value, (bool, int, float, str))


@fuzz_settings(200)
@given(st.sampled_from(NAMES), st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.lists(st.integers(), max_size=2),
                                          st.text(max_size=8)))
def test_from_strings_rejects_non_strings_and_from_dict_checks_types(name, value):
    if not isinstance(value, str):
        try:
            Hyperparameters.from_strings({name: value})
        except HyperparameterError as e:
            assert name in str(e)
        else:
            raise AssertionError(f"from_strings accepted a non-string {value!r} for {name}")
    try:
        Hyperparameters.from_dict({name: value})
    except HyperparameterError as e:
        assert name in str(e)


def _nest(value, depth: int, kind: str):
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


nested = st.recursive(st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=4)),
                      lambda inner: st.one_of(st.lists(inner, max_size=3),
                                              st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                      max_leaves=12)


@fuzz_settings(100)
@given(st.sampled_from(NAMES), st.one_of(nested, st.builds(_nest, nested, st.sampled_from([2_000, 50_000, 100_000]),
                                                            st.sampled_from(["list", "dict"]))))
def test_nested_values_of_any_depth_are_named_errors(name, value):
    """A JSON value of any shape and depth (issue 19: a 100k-deep one was a RecursionError) is a
    short HyperparameterError naming the parameter, from either constructor."""
    for build in (Hyperparameters.from_strings, Hyperparameters.from_dict):
        try:
            build({name: value})
        except HyperparameterError as e:
            assert name in str(e) and len(str(e)) < 2000
        else:
            assert build == Hyperparameters.from_dict and (value is None or isinstance(value, (int, float)))


@fuzz_settings(200)
@given(st.dictionaries(st.sampled_from(NAMES), st.integers(min_value=-(10**30), max_value=10**30).map(str), max_size=6))
def test_accepted_sizes_stay_within_their_bounds(raw):
    """Whatever integers arrive, an accepted set has every bounded size within its bound."""
    try:
        hp = Hyperparameters.from_strings(raw)
    except HyperparameterError:
        return
    for name in raw:
        spec = SCHEMA[name]
        if spec.maximum is not None and spec.kind == "int":
            assert getattr(hp, name) <= spec.maximum
