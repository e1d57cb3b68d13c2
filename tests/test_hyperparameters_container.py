"""The training program and the hyperparameter schema together: every combination the built-in
accepts trains (and says how it was read), a model that cannot fit is refused up front with its
memory estimate (exit 2), and a broken hyperparameters.json is exit 2, never a traceback."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from algo_utils import TINY_HYPERPARAMETERS, run_train, write_ml_tree  # noqa: E402
from s2s_aws.errors import InputError  # noqa: E402
from s2s_aws.contract.hyperparameters import Hyperparameters  # noqa: E402
from s2s_aws.contract.metrics import parse_metric_line  # noqa: E402
from s2s_algorithm.config import (ModelConfig, check_model_fits, count_parameters,  # noqa: E402
                                  estimate_training_memory)
from s2s_algorithm.model import Seq2Seq  # noqa: E402

QUICK = {**TINY_HYPERPARAMETERS, "optimized_metric": "perplexity", "bleu_sample_size": "0",
         "checkpoint_frequency_num_batches": "5", "max_num_batches": "10"}


def _failure(root) -> str:
    path = root / "output" / "failure"
    assert path.is_file(), "no failure file"
    return path.read_text()


# -- the up-front memory estimate -------------------------------------------------------------------
@pytest.mark.parametrize("arch", [
    {}, {"encoder_type": "cnn", "decoder_type": "cnn"}, {"encoder_type": "cnn"}, {"decoder_type": "cnn"},
    {"num_layers_encoder": 3, "num_layers_decoder": 2, "rnn_cell_type": "gru", "rnn_attention_type": "bilinear"},
    {"num_layers_decoder": 2, "rnn_attention_in_upper_layers": False, "rnn_attention_num_hidden": 24},
])
def test_parameter_count_is_exact(arch):
    cfg = ModelConfig(src_vocab_size=50, trg_vocab_size=70, rnn_num_hidden=32, num_embed_source=16,
                      num_embed_target=24, cnn_num_hidden=20, **arch)
    assert count_parameters(cfg) == Seq2Seq(cfg).num_parameters()


def test_estimate_counts_weights_gradients_and_optimizer_state():
    cfg = ModelConfig(src_vocab_size=50, trg_vocab_size=70, rnn_num_hidden=32, num_embed_source=16,
                      num_embed_target=16)
    n = Seq2Seq(cfg).num_parameters()
    assert estimate_training_memory(cfg, "adam").bytes == n * 16
    assert estimate_training_memory(cfg, "rmsprop").bytes == n * 12
    assert estimate_training_memory(cfg, "sgd", 0.9).bytes == n * 12
    assert estimate_training_memory(cfg, "sgd", None).bytes == n * 8


def test_the_largest_allowed_sizes_are_counted_without_allocating_them():
    hp = Hyperparameters.from_strings({"num_layers_encoder": "100", "num_layers_decoder": "100",
                                       "rnn_num_hidden": "16384", "num_embed_source": "16384",
                                       "num_embed_target": "16384"})
    cfg = ModelConfig.from_hyperparameters(hp, 50004, 50004)
    assert count_parameters(cfg) > 5 * 10**11        # about 9 TB with adam: counted on the meta device


def test_check_model_fits_refuses_with_the_estimate_and_accepts_what_fits():
    hp = Hyperparameters.from_strings({"num_layers_encoder": "8", "rnn_num_hidden": "4096"})
    with pytest.raises(InputError) as info:
        check_model_fits(hp, 50004, 50004, available=(8 << 30, "memory of each GPU"))
    text = str(info.value)
    assert info.value.exit_code == 2
    assert "cannot fit" in text and "parameters" in text and "GiB" in text and "8.0 GiB" in text
    assert "num_layers_encoder=8" in text and "rnn_num_hidden=4096" in text and "50,004" in text
    small = Hyperparameters.from_strings({"rnn_num_hidden": "64", "num_embed_source": "32", "num_embed_target": "32"})
    estimate = check_model_fits(small, 100, 100, available=(8 << 30, "memory of each GPU"))
    assert estimate.parameters == Seq2Seq(ModelConfig.from_hyperparameters(small, 100, 100)).num_parameters()


@pytest.mark.slow
def test_training_refuses_a_model_that_cannot_fit_at_once_with_exit_2(tmp_path):
    # 100 layers of 16384 units: the largest sizes the schema allows, about 9 TB with adam
    root = write_ml_tree(tmp_path, {**QUICK, "num_layers_encoder": "100", "num_layers_decoder": "100",
                                    "rnn_num_hidden": "16384", "rnn_attention_num_hidden": "16384",
                                    "num_embed_source": "16384", "num_embed_target": "16384"})
    proc = run_train(root, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    text = _failure(root)
    assert "cannot fit" in text and "parameters" in text and "GiB" in text
    assert not (root / "model" / "model.pt").exists()


@pytest.mark.slow
def test_a_million_encoder_layers_exit_2_naming_the_bound(tmp_path):
    root = write_ml_tree(tmp_path, {**QUICK, "num_layers_encoder": "1000000"})
    proc = run_train(root, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "num_layers_encoder" in _failure(root) and "[1, 100]" in _failure(root)


# -- hyperparameters.json that cannot be read -------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  '{"batch_size": ' + "[" * 100_000 + "]" * 100_000 + "}"])
def test_a_deeply_nested_hyperparameters_json_is_exit_2_not_a_recursion_error(tmp_path, text):
    root = write_ml_tree(tmp_path, QUICK)
    (root / "input" / "config" / "hyperparameters.json").write_text(text)
    proc = run_train(root, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    failure = _failure(root)
    assert "hyperparameters" in failure and "nested" in failure, failure
    assert "Traceback" not in proc.stderr


# -- combinations the built-in accepts train, and say how they were read ----------------------------
@pytest.mark.slow
def test_bleu_with_default_sample_size_and_clip_gradient_zero_train_and_say_so_once(tmp_path):
    root = write_ml_tree(tmp_path, {**QUICK, "optimized_metric": "bleu", "bleu_sample_size": "0",
                                    "clip_gradient": "0", "rnn_residual_connections": "true"})
    proc = run_train(root, timeout=300)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    out = proc.stdout
    for note in Hyperparameters.from_strings(json.loads(
            (root / "input" / "config" / "hyperparameters.json").read_text())).notes():
        assert out.count(note) == 1, note
    assert out.count("whole validation set") == 1
    metrics = [m for m in map(parse_metric_line, out.splitlines()) if m]
    assert len([m for m in metrics if m[0] == "validation:bleu"]) == 2        # BLEU at both checkpoints
    perplexities = [m[1] for m in metrics if m[0] == "validation:perplexity"]
    assert len(perplexities) == 2 and perplexities[0] != perplexities[1]      # clip_gradient=0 did not zero the updates
    assert (root / "model" / "model.pt").is_file()


# -- the model configuration is derived from the schema -----------------------------------------------
def test_model_config_fields_types_and_defaults_come_from_the_schema():
    import dataclasses

    from s2s_algorithm.config import MODEL_HYPERPARAMETERS
    from s2s_aws.contract.hyperparameters import SCHEMA

    found = {f.name: f for f in dataclasses.fields(ModelConfig)}
    assert list(found) == ["src_vocab_size", "trg_vocab_size", *MODEL_HYPERPARAMETERS]
    assert found["src_vocab_size"].default is dataclasses.MISSING
    for name in MODEL_HYPERPARAMETERS:
        spec = SCHEMA[name]
        assert found[name].default == spec.default and type(found[name].default) is type(spec.default), name
        assert found[name].type == spec.annotation + (" | None" if spec.default_from else ""), name
    # resolved the same way as the hyperparameters, "attention follows rnn_num_hidden" included
    for hp in (Hyperparameters(), Hyperparameters(rnn_num_hidden=64),
               Hyperparameters(rnn_num_hidden=64, rnn_attention_num_hidden=32, encoder_type="cnn")):
        cfg = ModelConfig.from_hyperparameters(hp, 10, 20)
        assert (cfg.src_vocab_size, cfg.trg_vocab_size) == (10, 20)
        assert {name: getattr(cfg, name) for name in MODEL_HYPERPARAMETERS} == \
            {name: getattr(hp, name) for name in MODEL_HYPERPARAMETERS}
    assert ModelConfig(10, 20, rnn_num_hidden=8).rnn_attention_num_hidden == 8
    assert list(ModelConfig(10, 20).to_dict()) == list(found)
