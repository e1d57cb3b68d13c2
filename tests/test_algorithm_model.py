"""The network: every architectural hyperparameter builds, runs forward/backward, and decodes step by
step exactly like teacher forcing; padding never leaks into real positions."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from s2s_algorithm.config import ModelConfig  # noqa: E402
from s2s_algorithm.model import Seq2Seq, init_weights  # noqa: E402

torch.set_num_threads(1)

SMALL = dict(src_vocab_size=30, trg_vocab_size=35, num_embed_source=12, num_embed_target=10,
             rnn_num_hidden=16, rnn_attention_num_hidden=8, cnn_num_hidden=12, max_seq_len_source=20,
             max_seq_len_target=20)

CONFIGS = {
    "mlp": {},
    "dot": {"rnn_attention_type": "dot"},
    "dot-same-width": {"rnn_attention_type": "dot", "rnn_attention_num_hidden": 16},
    "bilinear": {"rnn_attention_type": "bilinear"},
    "fixed": {"rnn_attention_type": "fixed"},
    "gru": {"rnn_cell_type": "gru"},
    "deep-residual": {"num_layers_encoder": 3, "num_layers_decoder": 3, "rnn_residual_connections": True},
    "deep-gru-residual-from-3": {"rnn_cell_type": "gru", "num_layers_encoder": 4, "num_layers_decoder": 4,
                                 "rnn_residual_connections": True, "rnn_first_residual_layer": 3},
    "attention-on-top": {"num_layers_decoder": 2, "rnn_attention_in_upper_layers": False},
    "state-avg": {"rnn_decoder_state_init": "avg", "num_layers_encoder": 2},
    "state-zero": {"rnn_decoder_state_init": "zero"},
    "dropouts": {"embed_dropout_source": 0.2, "embed_dropout_target": 0.2, "rnn_decoder_hidden_dropout": 0.3,
                 "num_layers_decoder": 2},
    "uniform-init": {"weight_init_type": "uniform", "weight_init_scale": 0.1},
    "cnn": {"encoder_type": "cnn", "decoder_type": "cnn", "num_layers_encoder": 2, "num_layers_decoder": 2},
    "cnn-relu-even-kernels": {"encoder_type": "cnn", "decoder_type": "cnn", "cnn_activation_type": "relu",
                              "cnn_kernel_width_encoder": 4, "cnn_kernel_width_decoder": 2},
    "cnn-softrelu": {"encoder_type": "cnn", "decoder_type": "cnn", "cnn_activation_type": "softrelu",
                     "cnn_hidden_dropout": 0.1},
    "cnn-sigmoid": {"encoder_type": "cnn", "decoder_type": "cnn", "cnn_activation_type": "sigmoid"},
    "cnn-tanh": {"encoder_type": "cnn", "decoder_type": "cnn", "cnn_activation_type": "tanh"},
    "cnn-encoder-rnn-decoder": {"encoder_type": "cnn", "rnn_decoder_state_init": "avg"},
    "rnn-encoder-cnn-decoder": {"decoder_type": "cnn"},
}


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([6, 3, 1, 5])
    src = torch.zeros(4, 6, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        src[b, :n] = torch.randint(4, 30, (n,), generator=g)
        src[b, n - 1] = 3
    trg = torch.randint(4, 35, (4, 7), generator=g)
    trg[:, 0] = 2
    return src, lengths, trg


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_forward_backward_and_incremental_decoding(name):
    torch.manual_seed(0)
    cfg = ModelConfig(**{**SMALL, **CONFIGS[name]})
    model = Seq2Seq(cfg)
    src, lengths, trg = _batch()

    model.train()
    logits, attention = model(src, lengths, trg)
    assert logits.shape == (4, 7, 35)
    assert attention.shape == (4, 7, 6)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 35), trg.roll(-1, 1).reshape(-1))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0

    model.eval()
    with torch.no_grad():
        full, full_att = model(src, lengths, trg)
        enc = model.encode(src, lengths)
        state = model.init_state(enc)
        steps, atts = [], []
        for t in range(trg.shape[1]):
            step_logits, state, w = model.step(trg[:, t], state, enc)
            steps.append(step_logits)
            atts.append(w)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.stack(atts, 1), full_att, rtol=1e-4, atol=1e-5)
    # attention is a distribution over the real source positions only
    torch.testing.assert_close(full_att.sum(-1), torch.ones(4, 7), rtol=1e-5, atol=1e-5)
    for b, n in enumerate(lengths.tolist()):
        assert float(full_att[b, :, n:].abs().sum()) == 0.0


@pytest.mark.parametrize("name", ["mlp", "deep-residual", "state-avg", "cnn", "fixed"])
def test_padding_does_not_change_a_sentence(name):
    torch.manual_seed(1)
    model = Seq2Seq(ModelConfig(**{**SMALL, **CONFIGS[name]})).eval()
    src, lengths, trg = _batch(3)
    with torch.no_grad():
        batched, _ = model(src, lengths, trg)
        b = 1
        alone, _ = model(src[b:b + 1, :lengths[b]], lengths[b:b + 1], trg[b:b + 1])
    torch.testing.assert_close(batched[b:b + 1], alone, rtol=1e-4, atol=1e-5)


def test_fixed_attention_reads_the_last_source_state():
    model = Seq2Seq(ModelConfig(**SMALL, rnn_attention_type="fixed")).eval()
    src, lengths, trg = _batch()
    with torch.no_grad():
        _, att = model(src, lengths, trg)
    assert att[torch.arange(4), :, lengths - 1].eq(1).all()


def test_first_encoder_layer_is_bidirectional_with_half_the_units_per_direction():
    model = Seq2Seq(ModelConfig(**SMALL, num_layers_encoder=2)).eval()
    enc = model.encoder
    assert enc.forward_rnn.hidden_size == enc.backward_rnn.hidden_size == 8
    (second,) = enc.layers
    assert not second.bidirectional and second.hidden_size == 16
    with pytest.raises(ValueError, match="even"):
        Seq2Seq(ModelConfig(**{**SMALL, "rnn_num_hidden": 15}))


def test_bidirectional_layer_matches_a_packed_bidirectional_rnn():
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(4)
    model = Seq2Seq(ModelConfig(**SMALL)).eval()
    enc = model.encoder
    ref = torch.nn.LSTM(12, 8, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name, p in enc.forward_rnn.named_parameters():
            getattr(ref, name).copy_(p)
        for name, p in enc.backward_rnn.named_parameters():
            getattr(ref, name + "_reverse").copy_(p)
    src, lengths, _ = _batch(5)
    with torch.no_grad():
        out = enc(src, lengths)
        packed = pack_padded_sequence(enc.embed(src), lengths, batch_first=True, enforce_sorted=False)
        expected, (h, _) = ref(packed)
        expected, _ = pad_packed_sequence(expected, batch_first=True, total_length=src.shape[1])
    torch.testing.assert_close(out.memory, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.final, torch.cat([h[0], h[1]], -1), rtol=1e-5, atol=1e-6)


def test_cnn_glu_doubles_channels_and_kernel_widths_apply():
    model = Seq2Seq(ModelConfig(**SMALL, encoder_type="cnn", decoder_type="cnn", cnn_kernel_width_encoder=5,
                                cnn_kernel_width_decoder=3))
    conv = model.encoder.layers[0].conv
    assert (conv.out_channels, conv.kernel_size) == (24, (5,))
    assert model.decoder.layers[0].conv.kernel_size == (3,)
    relu = Seq2Seq(ModelConfig(**SMALL, encoder_type="cnn", cnn_activation_type="relu"))
    assert relu.encoder.layers[0].conv.out_channels == 12


@pytest.mark.parametrize("factor,expected_fan", [("in", 40), ("out", 20), ("avg", 30)])
def test_xavier_bounds_follow_the_factor_type(factor, expected_fan):
    lin = torch.nn.Linear(40, 20)
    init_weights(lin, "xavier", 3.0, factor)
    bound = (3.0 / expected_fan) ** 0.5
    assert float(lin.weight.detach().abs().max()) <= bound
    assert float(lin.weight.detach().abs().max()) > 0.8 * bound
    assert float(lin.bias.detach().abs().max()) == 0.0


def test_uniform_init_uses_the_scale():
    lin = torch.nn.Linear(50, 50)
    init_weights(lin, "uniform", 0.05)
    assert 0.04 < float(lin.weight.detach().abs().max()) <= 0.05
