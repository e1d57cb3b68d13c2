"""The transformer (encoder_type=decoder_type=transformer): the key/value cache gives the same
outputs as a full recompute, search and attention matrices work, bad sizes are refused, and a tiny
transformer trains through s2s-train, is saved, reloaded and decodes (greedy and beam)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from algo_utils import TINY_HYPERPARAMETERS, reverse_pairs, train_tiny_model  # noqa: E402
from s2s_aws.contract.hyperparameters import Hyperparameters  # noqa: E402
from s2s_aws.contract.layout import BOS_ID  # noqa: E402
from s2s_aws.errors import HyperparameterError  # noqa: E402

TINY = dict(encoder_type="transformer", decoder_type="transformer", transformer_model_size=32,
            transformer_attention_heads=4, transformer_feed_forward_num_hidden=64, num_layers_encoder=2,
            num_layers_decoder=2, max_seq_len_source=12, max_seq_len_target=12)


def _model(**overrides):
    from s2s_algorithm.config import ModelConfig
    from s2s_algorithm.model import Seq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(src_vocab_size=30, trg_vocab_size=30, **{**TINY, **overrides}))
    return model.eval()


@pytest.mark.parametrize("positions", ["fixed", "learned"])
def test_cached_steps_equal_the_full_recompute(positions):
    model = _model(transformer_positional_embedding_type=positions)
    src = torch.randint(4, 30, (3, 7))
    lengths = torch.tensor([7, 5, 3])
    src[1, 5:] = 0
    src[2, 3:] = 0
    trg_in = torch.cat([torch.full((3, 1), BOS_ID), torch.randint(4, 30, (3, 5))], dim=1)
    with torch.no_grad():
        logits, weights = model(src, lengths, trg_in)
        assert logits.shape == (3, 6, 30) and weights.shape == (3, 6, 7)
        assert torch.allclose(weights.sum(-1), torch.ones(3, 6), atol=1e-5)
        assert weights[2, :, 3:].abs().max() == 0           # padding gets no attention
        enc = model.encode(src, lengths)
        state = model.init_state(enc)
        for t in range(6):
            step_logits, state, w = model.step(trg_in[:, t], state, enc)
            assert torch.allclose(step_logits, logits[:, t], atol=1e-4)
            assert torch.allclose(w, weights[:, t], atol=1e-5)
        # reordering the cache (as beam search does) reorders the rows
        order = torch.tensor([2, 0, 1])
        a, _, _ = model.step(trg_in[:, 0], model.reorder_state(state, order), enc.index_select(order))
        b, _, _ = model.step(trg_in[:, 0], state, enc)
        assert torch.allclose(a, b[order], atol=1e-5)


def test_greedy_and_beam_decode_with_attention_matrices():
    from s2s_algorithm.decode import translate_ids

    model = _model()
    sources = [[5, 6, 7, 8], [9, 10]]
    for beam in (1, 3):
        hyps = translate_ids(model, sources, beam_size=beam, attention=True)
        assert len(hyps) == 2
        for hyp in hyps:
            assert hyp.attention is not None and hyp.attention.shape[0] == len(hyp.ids)


def test_tied_weights_and_bf16_forward():
    model = _model(weight_tying_type="src_trg_softmax")
    assert model.decoder.output.weight is model.encoder.embed.tokens.weight
    assert model.decoder.embed.tokens is model.encoder.embed.tokens
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = model(torch.randint(4, 30, (2, 5)), torch.tensor([5, 4]), torch.randint(4, 30, (2, 4)))
    assert torch.isfinite(logits.float()).all()
    with pytest.raises(ValueError, match="weight_tying_type=src_trg_softmax needs one vocabulary size"):
        from s2s_algorithm.config import ModelConfig
        from s2s_algorithm.model import Seq2Seq

        Seq2Seq(ModelConfig(src_vocab_size=30, trg_vocab_size=31, **TINY, weight_tying_type="src_trg_softmax"))


@pytest.mark.parametrize("values, words", [
    ({"encoder_type": "transformer", "decoder_type": "transformer", "transformer_model_size": "30",
      "transformer_attention_heads": "4"}, "not divisible by transformer_attention_heads=4"),
    ({"encoder_type": "transformer"}, "encoder_type=transformer and decoder_type=rnn cannot be mixed"),
])
def test_inconsistent_transformer_hyperparameters_are_refused(values, words):
    with pytest.raises(HyperparameterError, match=words):
        Hyperparameters.from_strings(values)


def test_rnn_only_notes_say_transformer_settings_have_no_effect():
    notes = Hyperparameters.from_strings({"transformer_model_size": "64"}).notes()
    assert any("transformer_model_size has no effect" in n for n in notes)


@pytest.mark.slow
def test_tiny_transformer_trains_saves_reloads_and_decodes(tmp_path):
    hp = {**TINY_HYPERPARAMETERS, **{k: str(v) for k, v in TINY.items()},
          "transformer_dropout_prepost": "0", "transformer_dropout_attention": "0", "transformer_dropout_act": "0",
          "learning_rate": "0.002", "max_num_batches": "150", "checkpoint_frequency_num_batches": "50",
          "optimized_metric": "perplexity", "bleu_sample_size": "0", "max_seq_len_source": "10",
          "max_seq_len_target": "10"}
    model_dir = train_tiny_model(tmp_path, hp)

    from s2s_algorithm.translator import load_translator

    tr = load_translator(model_dir)
    assert tr.model.cfg.encoder_type == "transformer"
    held_out = [src for src, _ in reverse_pairs(20, seed=99)]
    greedy = tr.translate_ids(held_out, beam_size=1, attention=True)
    beam = tr.translate_ids(held_out, beam_size=3)
    for r in greedy:
        assert r.attention is not None and r.attention.shape[0] == len(r.ids)
    # it has learned something of the reversal: most output tokens are the source's tokens
    overlap = sum(len(set(r.ids) & set(src)) / max(len(set(src)), 1) for r, src in zip(beam, held_out))
    assert overlap / len(held_out) > 0.5, [(s, r.ids) for s, r in zip(held_out, beam)][:5]
