"""Property tests: any valid set of hyperparameters survives the string form unchanged."""
from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from s2s_aws.contract.hyperparameters import SCHEMA, HyperparameterSpec, Hyperparameters


def _values(spec: HyperparameterSpec) -> st.SearchStrategy[Any]:
    """Valid python values for one spec, derived from its declared bounds."""
    if spec.kind == "bool":
        return st.booleans()
    if spec.kind == "choice":
        return st.sampled_from(spec.choices)
    if spec.kind == "int":
        lo = int(spec.minimum) if spec.minimum is not None else -(10**6)
        hi = int(spec.maximum) if spec.maximum is not None else 10**9
        ints = st.integers(lo, hi)
        if spec.even:
            ints = st.integers((lo + 1) // 2, hi // 2).map(lambda v: 2 * v)
        return st.one_of(ints, st.sampled_from(spec.special)) if spec.special else ints
    floats = st.floats(min_value=spec.minimum, max_value=spec.maximum, exclude_min=spec.min_exclusive,
                       exclude_max=spec.max_exclusive, allow_nan=False, allow_infinity=False)
    return floats.filter(lambda v: v not in spec.excluded)


@st.composite
def valid_hyperparameters(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(SCHEMA)), unique=True))
    values = {name: draw(_values(SCHEMA[name])) for name in names}
    # satisfy the cross-field rules (the only combinations the built-in rejects too)
    if "momentum" in values:
        values["optimizer_type"] = "sgd"
    if values.get("max_num_epochs") is not None and values.get("min_num_epochs", 0) > values["max_num_epochs"]:
        values["min_num_epochs"], values["max_num_epochs"] = values["max_num_epochs"], values["min_num_epochs"]
    # the transformer's rules: on both sides or neither, model size a multiple of the heads
    if "transformer" in (values.get("encoder_type"), values.get("decoder_type")):
        values["encoder_type"] = values["decoder_type"] = "transformer"
        heads = values.get("transformer_attention_heads", SCHEMA["transformer_attention_heads"].default)
        size = values.get("transformer_model_size", SCHEMA["transformer_model_size"].default)
        if size % heads:
            values["transformer_model_size"] = heads * max(1, size // heads)
    return values


@settings(max_examples=200, deadline=None)
@given(valid_hyperparameters())
def test_string_form_round_trips(values):
    hp = Hyperparameters.from_dict(values)
    strings = hp.to_strings()
    assert all(isinstance(v, str) for v in strings.values())
    back = Hyperparameters.from_strings(strings)
    assert back == hp
    assert back.to_strings() == strings           # canonical input round-trips exactly
    assert back.as_dict() == hp.as_dict()
    for name, value in values.items():            # typed values are kept exactly
        assert getattr(back, name) == value
    full = hp.to_strings(include_defaults=True)
    assert Hyperparameters.from_strings(full).as_dict() == hp.as_dict()


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(SCHEMA)), st.text(max_size=8))
def test_arbitrary_strings_either_parse_or_raise_a_named_error(name, text):
    from s2s_aws.errors import HyperparameterError

    try:
        hp = Hyperparameters.from_strings({name: text})
    except HyperparameterError as e:
        assert e.name is not None and name in str(e)
    else:
        assert Hyperparameters.from_strings(hp.to_strings()) == hp


@settings(max_examples=200, deadline=None)
@given(valid_hyperparameters())
def test_notes_are_single_lines_naming_a_parameter(values):
    hp = Hyperparameters.from_dict(values)
    for note in hp.notes():
        assert "\n" not in note and any(name in note for name in SCHEMA), note
    assert hp.effective_bleu_sample_size in (-1, 0) or hp.effective_bleu_sample_size == hp.bleu_sample_size
    assert hp.effective_clip_gradient is None or hp.effective_clip_gradient > 0
