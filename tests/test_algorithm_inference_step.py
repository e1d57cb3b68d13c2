"""The inference path of decoding: the one-step cells of ``RNNDecoder._inference_step`` and the CPU
kernels of ``s2s_algorithm.kernels`` give what the modules give, on every path (input table or not,
LSTM or GRU, deep, oneDNN or not), and the cached weights follow parameter updates."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from s2s_algorithm import decoder as decoder_module  # noqa: E402
from s2s_algorithm import kernels  # noqa: E402
from s2s_algorithm.config import ModelConfig  # noqa: E402
from s2s_algorithm.model import Seq2Seq  # noqa: E402

SMALL = dict(src_vocab_size=30, trg_vocab_size=35, num_embed_source=12, num_embed_target=10,
             rnn_num_hidden=16, rnn_attention_num_hidden=8, max_seq_len_source=20, max_seq_len_target=20)

CONFIGS = {
    "lstm": {},
    "gru": {"rnn_cell_type": "gru"},
    "lstm-deep-residual": {"num_layers_decoder": 3, "rnn_residual_connections": True},
    "gru-deep-attention-on-top": {"rnn_cell_type": "gru", "num_layers_decoder": 2,
                                  "rnn_attention_in_upper_layers": False},
    "lstm-dot": {"rnn_attention_type": "dot", "num_layers_decoder": 2},
}


def _model(**overrides):
    """A model whose every parameter (biases included: they start at zero) is random."""
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(**{**SMALL, **overrides}))
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.5, 0.5)
    return model


def _source():
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([5, 2, 4])
    src = torch.zeros(3, 5, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        src[b, :n] = torch.randint(4, 30, (n,), generator=g)
    return src, lengths


def _steps(model, src, lengths, tokens, *, inference: bool):
    """Logits, states and attention of stepping through ``tokens`` ``(B, T)``; ``inference`` picks the
    path (no autograd: the fast cells; autograd on: the modules themselves)."""
    model.eval()
    with torch.set_grad_enabled(not inference):
        enc = model.encode(src, lengths)
        state = model.init_state(enc)
        out = []
        for t in range(tokens.shape[1]):
            logits, state, w = model.step(tokens[:, t], state, enc)
            out.append((logits.detach(), state.detach(), w.detach()))
    return out


@pytest.mark.parametrize("table", [True, False], ids=["input-table", "no-table"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_inference_step_matches_the_modules(name, table, monkeypatch):
    if not table:
        monkeypatch.setattr(decoder_module, "INPUT_TABLE_BYTES", 0)
    model = _model(**CONFIGS[name])
    src, lengths = _source()
    tokens = torch.randint(2, 35, (3, 6), generator=torch.Generator().manual_seed(2))
    fast = _steps(model, src, lengths, tokens, inference=True)
    slow = _steps(model, src, lengths, tokens, inference=False)
    weights = model.decoder._inference_weights()
    assert (weights["table"][0] is not None) == table
    for (fl, fs, fw), (sl, ss, sw) in zip(fast, slow):
        torch.testing.assert_close(fl, sl, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fs, ss, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fw, sw, rtol=1e-5, atol=1e-5)


def test_cached_weights_follow_parameter_updates():
    model = _model()
    src, lengths = _source()
    tokens = torch.randint(2, 35, (3, 4), generator=torch.Generator().manual_seed(3))
    before = _steps(model, src, lengths, tokens, inference=True)
    cached = model.decoder._inference_weights()
    assert model.decoder._inference_weights() is cached          # reused while nothing changes
    with torch.no_grad():                                        # what an optimizer step does
        for p in model.decoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    after = _steps(model, src, lengths, tokens, inference=True)
    reference = _steps(model, src, lengths, tokens, inference=False)
    assert model.decoder._inference_weights() is not cached
    assert not torch.allclose(before[-1][0], after[-1][0])
    for (fl, _, _), (sl, _, _) in zip(after, reference):
        torch.testing.assert_close(fl, sl, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["fused", "foreach", "for-loop"])
def test_cached_weights_follow_optimizer_steps_between_evaluations(optimizer):
    """As in training: decode (eval), train an update, decode again. Fused Adam writes parameters
    without bumping their version counters, so the cache must also go when training resumes."""
    model = _model()
    src, lengths = _source()
    tokens = torch.randint(2, 35, (3, 4), generator=torch.Generator().manual_seed(5))
    flags = {"fused": dict(fused=True), "foreach": dict(foreach=True), "for-loop": dict(foreach=False)}[optimizer]
    opt = torch.optim.Adam(model.parameters(), lr=0.05, **flags)
    for _ in range(2):
        model.eval()
        stepped = _steps(model, src, lengths, tokens, inference=True)
        reference = _steps(model, src, lengths, tokens, inference=False)
        for (fl, _, _), (sl, _, _) in zip(stepped, reference):
            torch.testing.assert_close(fl, sl, rtol=1e-5, atol=1e-5)
        model.train()
        logits, _ = model(src, lengths, tokens)
        logits.square().mean().backward()
        opt.step()
        opt.zero_grad()


def test_moving_the_model_drops_the_cache():
    model = _model()
    src, lengths = _source()
    tokens = torch.randint(2, 35, (3, 3), generator=torch.Generator().manual_seed(6))
    _steps(model, src, lengths, tokens, inference=True)
    assert "_inference_cache" in model.decoder.__dict__
    model.double()
    assert "_inference_cache" not in model.decoder.__dict__
    fast = _steps(model, src.clone(), lengths, tokens, inference=True)
    assert fast[0][0].dtype == torch.float64
    reference = _steps(model, src, lengths, tokens, inference=False)
    for (fl, _, _), (sl, _, _) in zip(fast, reference):
        torch.testing.assert_close(fl, sl)


def test_training_mode_steps_use_the_modules_with_dropout():
    model = _model(rnn_decoder_hidden_dropout=0.5)
    src, lengths = _source()
    model.train()
    with torch.no_grad():
        enc = model.encode(src, lengths)
        state = model.init_state(enc)
        a, _, _ = model.step(torch.full((3,), 2), state, enc)
        b, _, _ = model.step(torch.full((3,), 2), state, enc)
    assert not torch.allclose(a, b)                              # dropout is applied: not the fast path
    assert "_inference_cache" not in model.decoder.__dict__


@pytest.mark.parametrize("rows", [1, 7, 64])
def test_linear_matches_f_linear(rows):
    g = torch.Generator().manual_seed(rows)
    x, w, b = torch.randn(rows, 40, generator=g), torch.randn(300, 40, generator=g), torch.randn(300, generator=g)
    with torch.no_grad():
        got = kernels.linear(x, w, b)
    torch.testing.assert_close(got, torch.nn.functional.linear(x, w, b), rtol=1e-5, atol=1e-5)


def test_linear_keeps_autograd_and_falls_back_without_onednn(monkeypatch):
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(4, 8, generator=g), torch.randn(5, 8, generator=g, requires_grad=True), torch.zeros(5)
    out = kernels.linear(x, w, b)
    assert out.requires_grad
    out.sum().backward()
    assert w.grad is not None
    monkeypatch.setattr(kernels, "_onednn_ok", False)
    calls = []
    monkeypatch.setattr(torch.nn.functional, "linear", lambda *a: calls.append(a) or torch.zeros(4, 5))
    with torch.no_grad():
        kernels.linear(x, w.detach(), b)
    assert len(calls) == 1


def test_onednn_probe_reports_a_broken_operator(monkeypatch):
    monkeypatch.setattr(kernels, "_onednn_ok", None)

    class Broken:
        @staticmethod
        def _linear_pointwise(*args):
            raise RuntimeError("no oneDNN here")

    class Ops:
        mkldnn = Broken

    monkeypatch.setattr(torch, "ops", Ops)
    assert kernels.onednn_linear_available() is False


def test_argmax_rows_matches_torch_ties_and_infinities_included():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (50, 33), generator=g).float()       # many ties: the first maximum wins
    x[3] = float("-inf")
    x[4, :5] = float("-inf")
    x[5, 7] = float("inf")
    got = kernels.argmax_rows(x)
    assert got.dtype == torch.int64
    assert torch.equal(got, x.argmax(-1))
    assert torch.equal(kernels.argmax_rows(x.double()), x.double().argmax(-1))


@pytest.mark.parametrize("kernel", [1, 2, 3])
def test_cnn_steps_keep_a_fixed_window_and_match_teacher_forcing_past_the_position_table(kernel):
    """Incremental CNN decoding: the state is each layer's last ``kernel - 1`` inputs (it does not
    grow with the prefix), and logits match the full forward pass even beyond the last learned
    position (both clamp to it)."""
    model = _model(encoder_type="cnn", decoder_type="cnn", num_layers_decoder=2, cnn_num_hidden=12,
                   cnn_kernel_width_decoder=kernel, max_seq_len_target=4)
    model.eval()
    src, lengths = _source()
    trg = torch.randint(2, 35, (3, 9), generator=torch.Generator().manual_seed(4))   # 9 > 4 + 2 positions
    with torch.no_grad():
        full, full_att = model(src, lengths, trg)
        enc = model.encode(src, lengths)
        state = model.init_state(enc)
        logits, atts = [], []
        for t in range(trg.shape[1]):
            step_logits, state, w = model.step(trg[:, t], state, enc)
            assert state.window.shape == (2, 3, kernel - 1, 12)
            logits.append(step_logits)
            atts.append(w)
        reordered = model.reorder_state(state, torch.tensor([2, 0]))
    assert state.steps == 9
    torch.testing.assert_close(torch.stack(logits, 1), full, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.stack(atts, 1), full_att, rtol=1e-4, atol=1e-5)
    assert torch.equal(reordered.window, state.window[:, [2, 0]]) and reordered.steps == 9
