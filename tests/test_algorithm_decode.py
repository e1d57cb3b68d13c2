"""Batched greedy and beam search: beam 1 is greedy, batching changes nothing, bounds hold."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from s2s_algorithm import decode  # noqa: E402
from s2s_algorithm.config import ModelConfig  # noqa: E402
from s2s_algorithm.model import Seq2Seq  # noqa: E402

torch.set_num_threads(1)

ARCHS = {
    "rnn": {},
    "rnn-deep-gru": {"rnn_cell_type": "gru", "num_layers_encoder": 2, "num_layers_decoder": 2},
    "cnn": {"encoder_type": "cnn", "decoder_type": "cnn"},
}


def _model(arch: str, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(src_vocab_size=25, trg_vocab_size=30, num_embed_source=12, num_embed_target=12,
                      rnn_num_hidden=16, cnn_num_hidden=12, max_seq_len_source=12, max_seq_len_target=12,
                      weight_init_scale=6.0, **ARCHS[arch])
    return Seq2Seq(cfg).eval()


def _sources(n: int = 7, seed: int = 5) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = [0, 1, 4, 9, 3, 6, 2, 11, 5][:n]
    return [torch.randint(4, 25, (k,), generator=g).tolist() for k in lengths]


def _padded(sources):
    lengths = torch.tensor([len(s) + 1 for s in sources])
    src = torch.zeros(len(sources), int(lengths.max()), dtype=torch.long)
    for r, s in enumerate(sources):
        src[r, :len(s) + 1] = torch.tensor(s + [decode.EOS_ID])
    return src, lengths


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_beam_one_equals_greedy(arch):
    model = _model(arch)
    src, lengths = _padded(_sources())
    bound = decode.output_length_bound(lengths - 1, 12)
    g_tokens, g_att = decode.greedy_search(model, src, lengths, bound, attention=True)
    b_tokens, b_att = decode.beam_search(model, src, lengths, bound, 1, attention=True)
    assert torch.equal(g_tokens, b_tokens)
    torch.testing.assert_close(g_att, b_att)


@pytest.mark.parametrize("beam", [1, 4])
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_batched_equals_one_by_one(arch, beam):
    model = _model(arch)
    sources = _sources()
    batched = decode.translate_ids(model, sources, beam_size=beam, max_seq_len_target=12, attention=True,
                                   batch_size=4)
    for s, hyp in zip(sources, batched):
        alone = decode.translate_ids(model, [s], beam_size=beam, max_seq_len_target=12, attention=True)[0]
        assert alone.ids == hyp.ids
        assert hyp.attention.shape == (len(hyp.ids), len(s))
        if hyp.attention.size:
            assert abs(alone.attention - hyp.attention).max() < 1e-4


def test_outputs_respect_the_length_bounds_and_never_emit_specials():
    model = _model("rnn", seed=3)
    sources = _sources()
    for beam in (1, 3):
        for s, hyp in zip(sources, decode.translate_ids(model, sources, beam_size=beam, max_seq_len_target=7)):
            assert len(hyp.ids) <= min(7, 2 * len(s) + 10)
            assert not set(hyp.ids) & {decode.PAD_ID, decode.BOS_ID, decode.EOS_ID}


class _FakeModel:
    """What decoding needs of a model, with the source ids as a one-wide memory; ``step`` per subclass."""

    def encode(self, src, lengths):
        from s2s_algorithm.encoder import EncoderOutput
        mem = src.float().unsqueeze(-1)
        return EncoderOutput(mem, mem, src != 0, lengths, mem[:, 0])

    def init_state(self, enc):
        return torch.zeros(enc.memory.shape[0], 1)

    def reorder_state(self, state, index):
        return state.index_select(0, index)


class _TableModel(_FakeModel):
    """A fake model whose next-token distribution depends on the previous token only.

    From <s>: A 0.6, B 0.4. After A: D 0.3 and three tokens below; after B: C 0.9;
    after C: </s> 1.0. Greedy takes A D </s> (0.18); beam search finds B C </s> (0.36).
    """

    A, B, C, D, E = 4, 5, 6, 7, 8
    V = 9

    def __init__(self):
        table = torch.zeros(self.V, self.V)
        table[decode.BOS_ID, self.A], table[decode.BOS_ID, self.B] = 0.6, 0.4
        for t, p in ((self.D, 0.3), (self.E, 0.25), (self.C, 0.24), (decode.EOS_ID, 0.21)):
            table[self.A, t] = p
        table[self.B, self.C], table[self.B, decode.EOS_ID] = 0.9, 0.1
        table[self.C, decode.EOS_ID] = 1.0
        for t in (self.D, self.E):
            table[t, decode.EOS_ID] = 1.0
        table[decode.PAD_ID, decode.EOS_ID] = 1.0
        self.logits = table.log()

    def step(self, prev, state, enc):
        return self.logits[prev], state, torch.ones(prev.shape[0], enc.memory.shape[1])


def test_beam_search_beats_greedy_where_greedy_is_myopic():
    model = _TableModel()
    src, lengths = _padded([[4, 5]])
    bound = decode.output_length_bound(lengths - 1, 10)
    greedy, _ = decode.greedy_search(model, src, lengths, bound)
    beam, _ = decode.beam_search(model, src, lengths, bound, 2, length_penalty_alpha=0.0)
    assert greedy[0, :3].tolist() == [model.A, model.D, decode.EOS_ID]
    assert beam[0, :3].tolist() == [model.B, model.C, decode.EOS_ID]
    one, _ = decode.beam_search(model, src, lengths, bound, 1, length_penalty_alpha=0.0)
    assert torch.equal(one, greedy)


def test_length_penalty_changes_preference_for_length():
    model = _model("rnn", seed=2)
    sources = _sources(9)
    short = decode.translate_ids(model, sources, beam_size=5, max_seq_len_target=12, length_penalty_alpha=0.0)
    long_ = decode.translate_ids(model, sources, beam_size=5, max_seq_len_target=12, length_penalty_alpha=2.0,
                                 length_penalty_beta=5.0)
    assert sum(len(h.ids) for h in long_) >= sum(len(h.ids) for h in short)


@pytest.mark.parametrize("penalty", [(0.0, 0.0), (1.0, 0.0), (2.0, 5.0)], ids=["no-lp", "lp1", "lp2-beta5"])
@pytest.mark.parametrize("beam", [2, 5])
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_early_stop_gives_the_exhaustive_answer_with_fewer_rows(arch, beam, penalty):
    """Sentences leave beam search once their answer is fixed: same tokens and attention as searching
    until every hypothesis has finished, for less work (rows of ``model.step``)."""
    alpha, beta = penalty
    results, rows = {}, {}
    for early in (True, False):
        model = _model(arch, seed=3)
        calls = []
        step = model.step
        model.step = lambda prev, state, enc, step=step, calls=calls: calls.append(prev.shape[0]) or step(prev, state, enc)
        src, lengths = _padded(_sources(9))
        bound = decode.output_length_bound(lengths - 1, 12)
        results[early] = decode.beam_search(model, src, lengths, bound, beam, length_penalty_alpha=alpha,
                                            length_penalty_beta=beta, attention=True, early_stop=early)
        rows[early] = sum(calls)
    (tok_e, att_e), (tok_x, att_x) = results[True], results[False]
    n = min(tok_e.shape[1], tok_x.shape[1])
    # past the shorter run both can only hold <pad> (or nothing)
    assert torch.equal(tok_e[:, :n], tok_x[:, :n])
    assert not (tok_e[:, n:] != decode.PAD_ID).any() and not (tok_x[:, n:] != decode.PAD_ID).any()
    torch.testing.assert_close(att_e[:, :n], att_x[:, :n])
    assert rows[True] <= rows[False]


class _QuickOrSlowModel(_FakeModel):
    """Sentences whose source starts with 4 end at once (``</s>`` 0.9); others rarely end (0.01)."""

    V = 12

    def step(self, prev, state, enc):
        quick = enc.memory[:, 0, 0] == 4
        probs = torch.full((prev.shape[0], self.V), 0.99 / (self.V - 4))
        probs[:, :4] = 0.0
        probs[:, decode.EOS_ID] = 0.01
        probs[quick] = 0.1 / (self.V - 4)
        probs[quick, :4] = 0.0
        probs[quick, decode.EOS_ID] = 0.9
        probs = probs + 1e-3 * torch.arange(self.V) / self.V     # no ties
        weights = torch.softmax(enc.memory[:, :, 0], dim=1)
        return probs.log(), state, weights


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_early_stop_drops_decided_sentences(alpha):
    """A sentence whose best finished hypothesis cannot be beaten leaves the batch while the others go
    on; the answers and attention are those of the exhaustive search."""
    model = _QuickOrSlowModel()
    src, lengths = _padded([[5, 6], [4, 6], [7, 8, 9]])
    bound = decode.output_length_bound(lengths - 1, 30)
    out, calls = {}, {}
    for early in (True, False):
        rows = calls[early] = []
        step = _QuickOrSlowModel.step
        model.step = lambda prev, state, enc, step=step, rows=rows: rows.append(prev.shape[0]) or step(model, prev, state, enc)
        out[early] = decode.beam_search(model, src, lengths, bound, 3, length_penalty_alpha=alpha,
                                        attention=True, early_stop=early)
    assert calls[True][:2] == [9, 6]              # the quick sentence left after its first step
    assert len(calls[True]) > 10                  # the others kept going
    assert sum(calls[True]) < sum(calls[False])
    (tok_e, att_e), (tok_x, att_x) = out[True], out[False]
    assert torch.equal(tok_e, tok_x[:, :tok_e.shape[1]])
    torch.testing.assert_close(att_e, att_x[:, :att_e.shape[1]])
    assert tok_e[1, 0].item() == decode.EOS_ID     # the quick sentence: empty output
