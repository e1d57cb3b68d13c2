"""Unit tests of the hyperparameter schema: every kind of rule, errors, string round trips."""
from __future__ import annotations

import copy
import pickle
import re
from pathlib import Path

import pytest

from s2s_aws.errors import HyperparameterError, InputError
from s2s_aws.contract.hyperparameters import EXTENSION_NAMES, SCHEMA, Hyperparameters, describe

CONTRACT = Path("/work/shared/CONTRACT.md")

# The contract's table, written out: name -> default in canonical string form
# (None = unset, "=rnn_num_hidden" = follows that name).
CONTRACT_DEFAULTS: dict[str, str | None] = {
    "batch_size": "64", "beam_size": "5", "bleu_sample_size": "0", "bucket_width": "10",
    "bucketing_enabled": "true", "checkpoint_frequency_num_batches": "1000", "checkpoint_threshold": "3",
    "clip_gradient": "1.0", "cnn_activation_type": "glu", "cnn_hidden_dropout": "0.0",
    "cnn_kernel_width_decoder": "5", "cnn_kernel_width_encoder": "3", "cnn_num_hidden": "512",
    "decoder_type": "rnn", "embed_dropout_source": "0.0", "embed_dropout_target": "0.0",
    "encoder_type": "rnn", "fixed_rate_lr_half_life": "10", "learning_rate": "0.0003",
    "loss_type": "cross-entropy", "lr_scheduler_type": "plateau_reduce", "max_num_batches": "-1",
    "max_num_epochs": None, "min_num_epochs": "0", "max_seq_len_source": "100", "max_seq_len_target": "100",
    "momentum": None, "num_embed_source": "512", "num_embed_target": "512", "num_layers_encoder": "1",
    "num_layers_decoder": "1", "optimized_metric": "perplexity", "optimizer_type": "adam",
    "plateau_reduce_lr_factor": "0.5", "plateau_reduce_lr_threshold": "3",
    "rnn_attention_in_upper_layers": "true", "rnn_attention_num_hidden": "=rnn_num_hidden",
    "rnn_attention_type": "mlp", "rnn_cell_type": "lstm", "rnn_decoder_hidden_dropout": "0.0",
    "rnn_decoder_state_init": "last", "rnn_first_residual_layer": "2", "rnn_num_hidden": "1024",
    "rnn_residual_connections": "false", "training_metric": "perplexity", "weight_decay": "0.0",
    "weight_init_scale": "2.34", "weight_init_type": "xavier", "xavier_factor_type": "in",
}
EXTENSION_DEFAULTS = {"seed": "1", "mixed_precision": "auto", "label_smoothing": "0.0",
                      "length_penalty_alpha": "1.0", "length_penalty_beta": "0.0",
                      "transformer_model_size": "512", "transformer_attention_heads": "8",
                      "transformer_feed_forward_num_hidden": "2048", "transformer_dropout_attention": "0.1",
                      "transformer_dropout_act": "0.1", "transformer_dropout_prepost": "0.1",
                      "transformer_positional_embedding_type": "fixed", "weight_tying_type": "none"}


#: values beyond the built-in's choices (extensions; the contract file lists the built-in's own)
EXTENSION_CHOICES = {"encoder_type": {"transformer"}, "decoder_type": {"transformer"}}


def _error(values: dict) -> HyperparameterError:
    with pytest.raises(HyperparameterError) as info:
        Hyperparameters.from_strings(values)
    return info.value


# -- the schema matches the contract -------------------------------------------------------------
def test_schema_has_the_49_contract_names_and_the_extensions():
    assert len(CONTRACT_DEFAULTS) == 49
    assert set(SCHEMA) == set(CONTRACT_DEFAULTS) | set(EXTENSION_DEFAULTS)
    assert set(EXTENSION_NAMES) == set(EXTENSION_DEFAULTS)
    assert Hyperparameters.names() == list(SCHEMA)


@pytest.mark.parametrize("name", sorted(CONTRACT_DEFAULTS) + sorted(EXTENSION_DEFAULTS))
def test_defaults_match_the_contract(name):
    expected = {**CONTRACT_DEFAULTS, **EXTENSION_DEFAULTS}[name]
    hp = Hyperparameters()
    spec = SCHEMA[name]
    if expected is None:
        assert getattr(hp, name) is None and spec.optional
        assert name not in hp.to_strings(include_defaults=True)
    elif expected.startswith("="):
        assert spec.default_from == expected[1:]
        assert getattr(hp, name) == getattr(hp, expected[1:])
    else:
        assert hp.to_strings(include_defaults=True)[name] == expected


def _contract_rows() -> list[tuple[str, str, str]]:
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split("## Hyperparameters", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("name", "---") or set(cells[0]) <= {"-"}:
            continue
        for name in cells[0].split(","):
            rows.append((name.strip(), cells[1], cells[2]))
    return rows


@pytest.mark.skipif(not CONTRACT.exists(), reason="CONTRACT.md not beside the checkout; the literal table above still runs")
def test_schema_matches_the_contract_file_itself():
    rows = _contract_rows()
    assert {r[0] for r in rows} == set(CONTRACT_DEFAULTS)
    for name, values, default in rows:
        spec = SCHEMA[name]
        if default == "unset":
            assert spec.default is None and spec.optional, name
        elif default.startswith("="):
            assert spec.default_from == default.lstrip("= ").strip(), name
        else:
            assert spec.parse(default) == spec.default, name
        if spec.kind == "choice":  # every choice is named in the contract's values column, and vice versa
            listed = set(re.findall(r"[a-z][a-z0-9_-]*", values.split("(")[0]))
            assert set(spec.choices) - EXTENSION_CHOICES.get(name, set()) == listed, name
        if spec.kind == "bool":
            assert values.startswith("true/false"), name


def test_annotations_cover_every_name():
    assert set(Hyperparameters.__annotations__) == set(SCHEMA)


# -- integers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("32", 32), (" 7 ", 7), ("+8", 8)])
def test_int_valid(text, value):
    assert Hyperparameters.from_strings({"batch_size": text}).batch_size == value


@pytest.mark.parametrize("text", ["0", "-3", "3.5", "3.0", "abc", "", "1e3", "3_2", "nan"])
def test_int_invalid_names_parameter_value_and_allowed(text):
    err = _error({"batch_size": text})
    assert err.name == "batch_size" and err.value == text
    assert "batch_size" in str(err) and repr(text) in str(err) and "integer in [1, 65536]" in str(err)
    assert isinstance(err, InputError)


def test_max_num_batches_minus_one_is_unlimited_and_zero_is_rejected():
    assert Hyperparameters().max_num_batches == -1
    assert Hyperparameters.from_strings({"max_num_batches": "500"}).max_num_batches == 500
    assert Hyperparameters.from_strings({"max_num_batches": "-1"}).max_num_batches == -1
    for bad in ("0", "-2"):
        assert _error({"max_num_batches": bad}).name == "max_num_batches"


def test_bleu_sample_size_minus_one_is_whole_set():
    assert Hyperparameters.from_strings({"bleu_sample_size": "-1"}).bleu_sample_size == -1
    assert Hyperparameters.from_strings({"bleu_sample_size": "0"}).bleu_sample_size == 0
    assert _error({"bleu_sample_size": "-2"}).name == "bleu_sample_size"


def test_rnn_num_hidden_must_be_even():
    assert Hyperparameters.from_strings({"rnn_num_hidden": "256"}).rnn_num_hidden == 256
    err = _error({"rnn_num_hidden": "255"})
    assert err.name == "rnn_num_hidden" and "even" in str(err)


def test_min_num_epochs_zero_allowed_negative_not():
    assert Hyperparameters.from_strings({"min_num_epochs": "0"}).min_num_epochs == 0
    assert _error({"min_num_epochs": "-1"}).name == "min_num_epochs"
    assert _error({"max_num_epochs": "0"}).name == "max_num_epochs"


def test_seed_range():
    assert Hyperparameters.from_strings({"seed": "0"}).seed == 0
    assert Hyperparameters.from_strings({"seed": str(2**32 - 1)}).seed == 2**32 - 1
    assert _error({"seed": str(2**32)}).name == "seed"


# -- floats -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,text,value", [
    ("learning_rate", "3e-4", 0.0003), ("learning_rate", "0.1", 0.1), ("learning_rate", ".5", 0.5),
    ("cnn_hidden_dropout", "0", 0.0), ("cnn_hidden_dropout", "1", 1.0), ("embed_dropout_source", "0.3", 0.3),
    ("plateau_reduce_lr_factor", "0.99", 0.99), ("weight_decay", "0", 0.0), ("clip_gradient", "-1", -1.0),
    ("clip_gradient", "5", 5.0), ("label_smoothing", "0.1", 0.1), ("length_penalty_alpha", "0", 0.0),
    # the built-in's ranges: plateau_reduce_lr_factor in (0, 1] (1 = never lower the rate, Sockeye's
    # check), clip_gradient=0 turns clipping off (MXNet's optimizers: clip_gradient <= 0 = off)
    ("plateau_reduce_lr_factor", "1", 1.0), ("clip_gradient", "0", 0.0),
])
def test_float_valid(name, text, value):
    assert getattr(Hyperparameters.from_strings({name: text}), name) == value


@pytest.mark.parametrize("name,text", [
    ("learning_rate", "0"), ("learning_rate", "-0.1"), ("learning_rate", "nan"), ("learning_rate", "inf"),
    ("learning_rate", "1e999"), ("learning_rate", "fast"), ("cnn_hidden_dropout", "1.01"),
    ("rnn_decoder_hidden_dropout", "-0.1"), ("embed_dropout_target", "2"),
    ("plateau_reduce_lr_factor", "0"), ("plateau_reduce_lr_factor", "1.01"), ("weight_decay", "-1e-5"),
    ("label_smoothing", "1"), ("length_penalty_beta", "-1"), ("weight_init_scale", "0"),
])
def test_float_invalid(name, text):
    err = _error({name: text})
    assert err.name == name and err.value == text
    assert name in str(err) and err.allowed and err.allowed in str(err)


def test_float_range_text_says_what_is_allowed():
    assert SCHEMA["cnn_hidden_dropout"].allowed == "a number in [0, 1]"
    assert SCHEMA["plateau_reduce_lr_factor"].allowed == "a number in (0, 1]"
    assert SCHEMA["label_smoothing"].allowed == "a number in [0, 1)"
    assert SCHEMA["learning_rate"].allowed == "a number > 0"


# -- booleans and choices ---------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("true", True), ("False", False), ("TRUE", True), ("1", True),
                                        ("0", False), (" false ", False)])
def test_bool_valid(text, value):
    assert Hyperparameters.from_strings({"bucketing_enabled": text}).bucketing_enabled is value


@pytest.mark.parametrize("text", ["yes", "no", "2", "", "t"])
def test_bool_invalid(text):
    err = _error({"bucketing_enabled": text})
    assert err.name == "bucketing_enabled" and "true or false" in str(err)


def test_choices_case_insensitive_and_canonical_lower_case():
    hp = Hyperparameters.from_strings({"rnn_cell_type": "GRU", "mixed_precision": "BF16"})
    assert hp.rnn_cell_type == "gru" and hp.mixed_precision == "bf16"
    assert hp.to_strings() == {"rnn_cell_type": "gru", "mixed_precision": "bf16"}


def test_choice_invalid_lists_choices_and_suggests():
    err = _error({"optimizer_type": "adamw"})
    assert err.name == "optimizer_type"
    assert "adam, sgd, rmsprop" in str(err) and "did you mean 'adam'" in str(err)
    assert _error({"loss_type": "hinge"}).name == "loss_type"


# -- cross-field rules ------------------------------------------------------------------------------
def test_momentum_only_with_sgd():
    hp = Hyperparameters.from_strings({"optimizer_type": "sgd", "momentum": "0.9"})
    assert hp.momentum == 0.9
    err = _error({"momentum": "0.9"})
    assert err.name == "momentum" and "optimizer_type" in str(err) and "sgd" in str(err)
    assert "momentum" in str(_error({"momentum": "0.9", "optimizer_type": "rmsprop"}))
    assert Hyperparameters.from_strings({"optimizer_type": "sgd"}).momentum is None


def test_residual_connections_with_one_layer_are_accepted_and_have_no_effect():
    # the built-in's documentation says the number of layers "should be" more than 1; it does not reject it
    hp = Hyperparameters.from_strings({"rnn_residual_connections": "true"})
    assert hp.rnn_residual_connections is True
    notes = hp.notes()
    assert len(notes) == 1 and "rnn_residual_connections" in notes[0] and "no effect" in notes[0]
    for layers in ({"num_layers_encoder": "2"}, {"num_layers_decoder": "3"}):
        hp = Hyperparameters.from_strings({"rnn_residual_connections": "true", **layers})
        assert hp.rnn_residual_connections is True and hp.notes() == []
    assert Hyperparameters.from_strings({"rnn_residual_connections": "false"}).notes() == []


def test_residual_connections_starting_above_the_top_layer_have_no_effect():
    hp = Hyperparameters.from_strings({"rnn_residual_connections": "true", "num_layers_encoder": "2",
                                       "num_layers_decoder": "2", "rnn_first_residual_layer": "3"})
    assert any("rnn_first_residual_layer=3" in n for n in hp.notes())


def test_attention_in_upper_layers_with_one_layer_is_harmless():
    hp = Hyperparameters.from_strings({"rnn_attention_in_upper_layers": "true", "num_layers_decoder": "1"})
    assert hp.rnn_attention_in_upper_layers is True
    assert len(hp.notes()) == 1 and "rnn_attention_in_upper_layers" in hp.notes()[0]
    assert Hyperparameters().notes() == []     # the default (true, one layer) says nothing


def test_min_epochs_not_above_max_epochs():
    # the built-in's engine (Sockeye) rejects this: "Minimum number of epochs must be smaller than maximum"
    assert Hyperparameters.from_strings({"min_num_epochs": "3", "max_num_epochs": "3"}).max_num_epochs == 3
    assert Hyperparameters.from_strings({"min_num_epochs": "30"}).min_num_epochs == 30  # no max set
    err = _error({"min_num_epochs": "4", "max_num_epochs": "2"})
    assert "min_num_epochs" in str(err) and "max_num_epochs" in str(err)


def test_bleu_metric_with_the_default_sample_size_uses_the_whole_validation_set():
    # the built-in accepts optimized_metric=bleu with bleu_sample_size left at 0 (the classic notebook
    # does exactly that); like Sockeye, BLEU is then computed on the whole validation set
    hp = Hyperparameters.from_strings({"optimized_metric": "bleu"})
    assert hp.bleu_sample_size == 0 and hp.to_strings() == {"optimized_metric": "bleu"}
    assert hp.effective_bleu_sample_size == -1
    notes = hp.notes()
    assert len(notes) == 1 and "whole validation set" in notes[0] and "bleu_sample_size" in notes[0]
    hp = Hyperparameters.from_strings({"optimized_metric": "bleu", "bleu_sample_size": "-1"})
    assert hp.effective_bleu_sample_size == -1 and hp.notes() == []
    hp = Hyperparameters.from_strings({"optimized_metric": "bleu", "bleu_sample_size": "200"})
    assert hp.effective_bleu_sample_size == 200 and hp.notes() == []
    assert Hyperparameters().effective_bleu_sample_size == 0


def test_clip_gradient_zero_turns_clipping_off():
    hp = Hyperparameters.from_strings({"clip_gradient": "0"})
    assert hp.clip_gradient == 0.0 and hp.effective_clip_gradient is None
    assert len(hp.notes()) == 1 and "clip_gradient=0" in hp.notes()[0]
    assert Hyperparameters.from_strings({"clip_gradient": "-1"}).effective_clip_gradient is None
    assert Hyperparameters.from_strings({"clip_gradient": "-1"}).notes() == []
    assert Hyperparameters().effective_clip_gradient == 1.0


def test_rnn_settings_with_cnn_encoder_and_decoder_are_ignored_with_a_note():
    hp = Hyperparameters.from_strings({"encoder_type": "cnn", "decoder_type": "cnn", "rnn_cell_type": "gru",
                                       "rnn_num_hidden": "64"})
    notes = hp.notes()
    assert len(notes) == 1 and "rnn_cell_type" in notes[0] and "rnn_num_hidden" in notes[0]
    hp = Hyperparameters.from_strings({"cnn_num_hidden": "64", "cnn_activation_type": "relu"})
    assert len(hp.notes()) == 1 and "cnn_num_hidden" in hp.notes()[0]
    assert Hyperparameters.from_strings({"encoder_type": "cnn", "rnn_num_hidden": "64"}).notes() == []


#: the classic notebook's training job ("SageMaker-Seq2Seq-Translation-English-German"), verbatim
NOTEBOOK_HYPERPARAMETERS = {
    "max_seq_len_source": "60", "max_seq_len_target": "60", "optimized_metric": "bleu", "batch_size": "64",
    "checkpoint_frequency_num_batches": "1000", "rnn_num_hidden": "512", "num_layers_encoder": "1",
    "num_layers_decoder": "1", "num_embed_source": "512", "num_embed_target": "512",
    "checkpoint_threshold": "3", "max_num_batches": "2100",
}


def test_the_classic_notebooks_hyperparameters_are_accepted():
    hp = Hyperparameters.from_strings(NOTEBOOK_HYPERPARAMETERS)
    assert hp.to_strings() == NOTEBOOK_HYPERPARAMETERS
    assert hp.effective_bleu_sample_size == -1
    assert [n for n in hp.notes() if "bleu" in n]


def test_momentum_with_adam_stays_an_error():
    # "Don't pass this parameter if you are using adam or rmsprop" (the built-in's documentation;
    # its MXNet optimizers take no momentum argument)
    err = _error({"momentum": "0.9", "optimizer_type": "adam"})
    assert err.name == "momentum"


def test_attention_num_hidden_follows_rnn_num_hidden_unless_set():
    assert Hyperparameters().rnn_attention_num_hidden == 1024
    hp = Hyperparameters.from_strings({"rnn_num_hidden": "64"})
    assert hp.rnn_attention_num_hidden == 64
    assert hp.to_strings() == {"rnn_num_hidden": "64"}
    assert hp.to_strings(include_defaults=True)["rnn_attention_num_hidden"] == "64"
    hp2 = Hyperparameters.from_strings({"rnn_num_hidden": "64", "rnn_attention_num_hidden": "33"})
    assert hp2.rnn_attention_num_hidden == 33  # need not be even


# -- names and several errors at once ---------------------------------------------------------------
def test_unknown_name_suggests_closest():
    err = _error({"learning_rat": "0.1"})
    assert err.name == "learning_rat"
    assert "did you mean 'learning_rate'" in str(err)
    assert "did you mean 'batch_size'" in str(_error({"Batch-Size": "3"}))
    assert "did you mean" not in str(_error({"zzzz": "1"}))


def test_all_problems_reported_together_one_per_line():
    err = _error({"batch_size": "0", "learning_rat": "1", "rnn_num_hidden": "7", "optimizer_type": "x"})
    lines = str(err).splitlines()
    assert lines[0].startswith("4 hyperparameter problems")
    assert len(lines) == 5
    assert [e.name for e in err.errors] == ["batch_size", "learning_rat", "rnn_num_hidden", "optimizer_type"]


def test_cross_field_problems_reported_together():
    err = _error({"momentum": "0.5", "min_num_epochs": "9", "max_num_epochs": "1"})
    assert {e.name for e in err.errors} == {"momentum", "min_num_epochs"}


def test_reserved_sagemaker_names_ignored_by_from_strings_only():
    hp = Hyperparameters.from_strings({"_tuning_objective_metric": "validation:bleu",
                                       "sagemaker_region": "\"us-east-1\"", "beam_size": "2"})
    assert hp.to_strings() == {"beam_size": "2"}
    with pytest.raises(HyperparameterError):
        Hyperparameters.from_strings({"_tuning_objective_metric": "x"}, ignore_reserved=False)
    with pytest.raises(HyperparameterError):
        Hyperparameters.from_dict({"sagemaker_region": "x"})


def test_from_strings_wants_strings_from_dict_takes_python_values():
    err = _error({"batch_size": 32})
    assert err.name == "batch_size" and "from_dict" in str(err)
    hp = Hyperparameters.from_dict({"batch_size": 32, "learning_rate": 1e-3, "bucketing_enabled": False,
                                    "beam_size": "3", "momentum": None, "rnn_num_hidden": 64.0})
    assert (hp.batch_size, hp.learning_rate, hp.bucketing_enabled, hp.beam_size) == (32, 0.001, False, 3)
    assert hp.rnn_num_hidden == 64 and isinstance(hp.rnn_num_hidden, int)
    for bad in ({"batch_size": True}, {"batch_size": 3.5}, {"learning_rate": float("nan")},
                {"optimizer_type": 1}, {"bucketing_enabled": 2}, {"batch_size": [1]}):
        with pytest.raises(HyperparameterError):
            Hyperparameters.from_dict(bad)
    with pytest.raises(HyperparameterError):
        Hyperparameters.from_strings(["batch_size"])  # type: ignore[arg-type]


# -- string form, value semantics -------------------------------------------------------------------
def test_canonical_round_trip_is_exact():
    x = {"batch_size": "32", "learning_rate": "0.001", "clip_gradient": "1.0", "bucketing_enabled": "false",
         "optimizer_type": "sgd", "momentum": "0.9", "max_num_epochs": "10", "weight_decay": "1e-05",
         "label_smoothing": "0.1", "seed": "42"}
    hp = Hyperparameters.from_strings(x)
    assert hp.to_strings() == x
    assert Hyperparameters.from_strings(hp.to_strings()) == hp


def test_non_canonical_input_is_canonicalised():
    hp = Hyperparameters.from_strings({"learning_rate": "3e-4", "clip_gradient": "1", "bucketing_enabled": "TRUE"})
    assert hp.to_strings() == {"clip_gradient": "1.0", "learning_rate": "0.0003", "bucketing_enabled": "true"}


def test_include_defaults_and_as_dict():
    hp = Hyperparameters.from_strings({"batch_size": "8"})
    full = hp.to_strings(include_defaults=True)
    assert set(full) == set(SCHEMA) - {"max_num_epochs", "momentum"}
    assert Hyperparameters.from_strings(full) == hp
    d = hp.as_dict()
    assert set(d) == set(SCHEMA) and d["batch_size"] == 8 and d["momentum"] is None
    assert Hyperparameters.from_dict(d) == hp


def test_equality_is_on_resolved_values_and_hash_agrees():
    a = Hyperparameters()
    b = Hyperparameters.from_strings({"batch_size": "64"})
    assert a == b and hash(a) == hash(b)
    assert a.to_strings() != b.to_strings() and b.is_set("batch_size") and not a.is_set("batch_size")
    assert a != Hyperparameters(batch_size=65)
    assert a != {"batch_size": 64}


def test_immutable_and_replace():
    hp = Hyperparameters(batch_size=16)
    with pytest.raises(AttributeError):
        hp.batch_size = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del hp.batch_size
    hp2 = hp.replace(beam_size=2)
    assert (hp.beam_size, hp2.beam_size, hp2.batch_size) == (5, 2, 16)
    assert hp.replace(batch_size=None).to_strings() == {}
    with pytest.raises(HyperparameterError):
        hp.replace(beam_size=0)


def test_attribute_access_and_repr():
    hp = Hyperparameters(batch_size=16, optimizer_type="sgd")
    assert repr(hp) == "Hyperparameters(batch_size=16, optimizer_type='sgd')"
    with pytest.raises(AttributeError, match="did you mean 'batch_size'"):
        hp.batchsize  # noqa: B018
    with pytest.raises(HyperparameterError):
        hp.is_set("nope")


def test_pickle_and_copy():
    hp = Hyperparameters(batch_size=16, learning_rate=0.01)
    for clone in (pickle.loads(pickle.dumps(hp)), copy.copy(hp), copy.deepcopy(hp)):
        assert clone == hp and clone.to_strings() == hp.to_strings()


def test_describe_lists_every_name():
    table = describe()
    lines = table.splitlines()
    assert len(lines) == len(SCHEMA) + 2
    for name in SCHEMA:
        assert re.search(rf"^{name}\s", table, re.M), name
    assert "= rnn_num_hidden" in table and "[extension]" in table


def test_numpy_scalars_accepted_by_from_dict():
    np = pytest.importorskip("numpy")
    hp = Hyperparameters.from_dict({"batch_size": np.int64(16), "learning_rate": np.float32(0.5),
                                    "rnn_num_hidden": np.float64(64.0)})
    assert (hp.batch_size, hp.learning_rate, hp.rnn_num_hidden) == (16, 0.5, 64)
    assert type(hp.batch_size) is int and type(hp.learning_rate) is float
    assert hp.to_strings() == {"batch_size": "16", "learning_rate": "0.5", "rnn_num_hidden": "64"}


# -- upper bounds on sizes (issue 19: num_layers_encoder=1000000 grew to 9 GB) ----------------------
BOUNDED = {"num_layers_encoder": 100, "num_layers_decoder": 100, "rnn_num_hidden": 16384,
           "rnn_attention_num_hidden": 16384, "num_embed_source": 16384, "num_embed_target": 16384,
           "cnn_num_hidden": 16384, "cnn_kernel_width_encoder": 128, "cnn_kernel_width_decoder": 128,
           "batch_size": 65536, "max_seq_len_source": 10000, "max_seq_len_target": 10000, "beam_size": 256}


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_sizes_have_generous_finite_upper_bounds(name):
    top = BOUNDED[name]
    assert SCHEMA[name].maximum == top
    assert getattr(Hyperparameters.from_strings({name: str(top)}), name) == top
    over = top + 2 if SCHEMA[name].even else top + 1
    for text in (str(over), "1000000", "9" * 40):
        err = _error({name: text})
        assert err.name == name and f"{top}]" in str(err), str(err)


def test_a_million_encoder_layers_is_refused_at_once():
    err = _error({"num_layers_encoder": "1000000"})
    assert "num_layers_encoder=" in str(err) and "[1, 100]" in str(err)


@pytest.mark.parametrize("build", [
    lambda v: Hyperparameters.from_strings({"batch_size": v}),
    lambda v: Hyperparameters.from_dict({"batch_size": v}),
    lambda v: Hyperparameters.from_dict({"rnn_cell_type": v}),
])
def test_deeply_nested_values_are_a_hyperparameter_error_not_a_recursion_error(build):
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(HyperparameterError) as info:
        build(deep)
    text = str(info.value)
    assert len(text) < 2000 and ("batch_size" in text or "rnn_cell_type" in text), text


def test_long_values_are_shortened_in_messages():
    err = _error({"batch_size": "x" * 100_000})
    assert err.value == "x" * 100_000 and len(str(err)) < 2000


# -- the one declaration ------------------------------------------------------------------------------
_PY_TYPES = {"int": int, "float": float, "bool": bool, "choice": str}


def test_each_class_attribute_is_its_spec_and_its_annotation_is_the_parsed_type():
    import typing

    hints = typing.get_type_hints(Hyperparameters)
    assert list(hints) == list(SCHEMA)              # declaration order is table order
    hp = Hyperparameters()
    for name, spec in SCHEMA.items():
        assert getattr(Hyperparameters, name) is spec, name
        expected = _PY_TYPES[spec.kind]
        assert hints[name] == (expected | None if spec.optional else expected), name
        value = getattr(hp, name)
        assert value is None if spec.optional else type(value) is expected, name


def test_a_declaration_that_contradicts_its_annotation_is_refused():
    from s2s_aws.contract._hpspec import declare

    def build(annotation: str, *args, **options):
        namespace = {"__annotations__": {"x": annotation}, "x": declare(*args, **options)}
        return type("Bad", (), namespace)

    assert build("int", 3, "help").x.kind == "int"
    for annotation, args, options in [("str", ("a", "help"), {}),                  # a str needs choices
                                      ("int", (3, "help"), {"choices": ("a",)}),    # only a str has them
                                      ("int", (None, "help"), {}),                  # None needs | None
                                      ("list[int]", ((), "help"), {})]:
        with pytest.raises((TypeError, RuntimeError)) as info:   # Python < 3.12 wraps it in a RuntimeError
            build(annotation, *args, **options)
        error = info.value if isinstance(info.value, TypeError) else info.value.__cause__
        assert isinstance(error, TypeError) and str(error).startswith("hyperparameter x: "), annotation


def test_describe_rows_give_what_a_listing_needs():
    from s2s_aws.contract.hyperparameters import HyperparameterRow, describe_rows

    rows = describe_rows()
    assert [r.name for r in rows] == list(SCHEMA)
    by_name = {r.name: r for r in rows}
    assert by_name["batch_size"] == HyperparameterRow("batch_size", "int", "64", "an integer in [1, 65536]",
                                                      SCHEMA["batch_size"].help, False)
    assert by_name["rnn_attention_num_hidden"].default == "= rnn_num_hidden"
    assert by_name["max_num_epochs"].default == "unset"
    assert by_name["optimizer_type"][1:4] == ("str", "adam", "one of: adam, sgd, rmsprop")
    assert {r.name for r in rows if r.extension} == set(EXTENSION_NAMES)
    assert [r.name for r in describe_rows(["seed", "beam_size"])] == ["seed", "beam_size"]
    table = describe()
    for r in rows:
        assert re.search(rf"^{r.name}\s+{r.type}\s+{re.escape(r.default)}\s+{re.escape(r.allowed)}\s+"
                         rf"{re.escape(r.help)}", table, re.M), r.name


@pytest.mark.parametrize("text,value", [("true", True), (" TRUE ", True), ("1", True), ("True", True),
                                        ("false", False), ("0", False), ("\tFalse\n", False)])
def test_parse_bool_accepts_the_hyperparameter_vocabulary(text, value):
    from s2s_aws.contract.hyperparameters import parse_bool

    assert parse_bool(text) is value
    assert Hyperparameters.from_strings({"bucketing_enabled": text}).bucketing_enabled is value


@pytest.mark.parametrize("text", ["yes", "no", "on", "off", "", " ", "2", "-1", "t", "truee", "1.0"])
def test_parse_bool_refuses_everything_else(text):
    from s2s_aws.contract.hyperparameters import parse_bool

    with pytest.raises(ValueError, match="not a boolean: expected true or false"):
        parse_bool(text)
    err = _error({"bucketing_enabled": text})
    assert err.allowed == "true or false"


def test_the_old_module_name_re_exports_the_contract():
    import s2s_aws.contract.hyperparameters as contract
    import s2s_aws.hyperparameters as old

    assert old.__all__ == contract.__all__
    for name in contract.__all__:
        assert getattr(old, name) is getattr(contract, name), name
