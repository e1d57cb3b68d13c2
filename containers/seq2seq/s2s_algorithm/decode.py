"""Batched greedy and beam search.

Both work on a whole batch at once (beam search flattens sentences x beams into ``B*K`` rows) and
loop over output positions only. Sources are token-id lists without ``</s>`` (it is appended here);
outputs are id lists without ``</s>``, optionally with one attention row per output token.

Beam search ranks hypotheses by ``sum log p / lp(len)`` with the Sockeye/GNMT length penalty
``lp(len) = ((beta + len) / (beta + 1)) ** alpha`` (``len`` counts ``</s>``). Finished hypotheses stay in
the beam with a frozen score; a sentence's search ends when every hypothesis has finished, when the
length bound is reached, or (``early_stop``) as soon as no running hypothesis can beat its best
finished one, which gives the same answer sooner. A sentence's output is at most ``min(max_seq_len_target, 2 * len(source) + 10)`` tokens.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from s2s_aws.contract.layout import BOS_ID, EOS_ID, PAD_ID, UNK_ID

from .kernels import argmax_rows
from .model import Seq2Seq

logger = logging.getLogger(__name__)

__all__ = ["Hypothesis", "greedy_search", "beam_search", "translate_ids", "output_length_bound",
           "PAD_ID", "UNK_ID", "BOS_ID", "EOS_ID"]


@dataclass
class Hypothesis:
    """One output: ids without ``</s>``; attention ``(len(ids), source length)`` when asked."""

    ids: list[int]
    attention: np.ndarray | None = None


def output_length_bound(source_lengths: Tensor, max_seq_len_target: int) -> Tensor:
    """Most output tokens (without ``</s>``) per sentence: ``min(max_seq_len_target, 2 * len + 10)``."""
    return torch.clamp(2 * source_lengths + 10, max=int(max_seq_len_target))


def _mask_specials(logp: Tensor) -> Tensor:
    logp[:, PAD_ID] = float("-inf")
    logp[:, BOS_ID] = float("-inf")
    return logp


def _force_eos(logp: Tensor, rows: Tensor) -> Tensor:
    """Rows where ``rows`` is True may only produce ``</s>`` (keeping its log-probability).

    In place, and only on those rows: most steps have none, and a full-vocabulary ``where`` per step
    would cost as much as the search itself."""
    idx = rows.nonzero().squeeze(1)
    if idx.numel():
        eos = logp[idx, EOS_ID].clone()
        logp[idx] = float("-inf")
        logp[idx, EOS_ID] = eos
    return logp


def _collect(tokens: Tensor, weights: Tensor | None, source_lengths: Tensor) -> list[Hypothesis]:
    """``tokens`` ``(B, T)`` (cut at the first ``</s>``), ``weights`` ``(B, T, S)`` -> hypotheses."""
    tokens_np = tokens.cpu().numpy()
    weights_np = weights.float().cpu().numpy() if weights is not None else None
    lengths = source_lengths.cpu().numpy()
    is_end = (tokens_np == EOS_ID) | (tokens_np == PAD_ID)
    ends = np.where(is_end.any(1), is_end.argmax(1), tokens_np.shape[1])
    out = []
    for b in range(tokens_np.shape[0]):
        ids = tokens_np[b, :ends[b]].tolist()
        att = weights_np[b, :ends[b], :lengths[b]] if weights_np is not None else None
        out.append(Hypothesis(ids=ids, attention=att))
    return out


@torch.no_grad()
def greedy_search(model: Seq2Seq, src: Tensor, src_lengths: Tensor, max_lengths: Tensor,
                  attention: bool = False) -> tuple[Tensor, Tensor | None]:
    """Greedy decoding of a padded batch: tokens ``(B, T)`` and weights ``(B, T, S)`` (or None).

    Sentences that have produced ``</s>`` leave the batch: each step only computes the ones still
    running (their state and encoder output are compacted with ``index_select``)."""
    batch = src.shape[0]
    device = src.device
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    max_lengths = max_lengths.to(device)
    steps = int(max_lengths.max()) + 1
    out = torch.full((batch, steps), PAD_ID, dtype=torch.long, device=device)
    weights = torch.zeros(batch, steps, src.shape[1], device=device) if attention else None
    active = torch.arange(batch, device=device)        # rows of the original batch still running
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    limits = max_lengths
    min_limit = int(limits.min())                      # no row is forced to </s> before this step
    compacted = False
    used = 0
    for t in range(steps):
        logits, state, w = model.step(prev, state, enc)
        logp = _mask_specials(logits.float())
        if t >= min_limit:
            logp = _force_eos(logp, t >= limits)
        nxt = argmax_rows(logp)
        if compacted:
            out[active, t] = nxt
            if weights is not None:
                weights[active, t] = w.float()
        else:
            out[:, t] = nxt
            if weights is not None:
                weights[:, t] = w.float()
        used = t + 1
        running = nxt != EOS_ID
        n_running = int(running.sum())
        if n_running == 0:
            break
        if n_running < active.numel():
            keep = running.nonzero().squeeze(1)
            active, nxt, limits = active[keep], nxt[keep], limits[keep]
            state = model.reorder_state(state, keep)
            enc = enc.index_select(keep)
            min_limit = int(limits.min())
            compacted = True
        prev = nxt
    return out[:, :used], (weights[:, :used] if weights is not None else None)


def _length_penalty(length: Tensor | float, alpha: float, beta: float) -> Tensor | float:
    return ((beta + length) / (beta + 1.0)) ** alpha


def _decided(scores: Tensor, lengths: Tensor, finished: Tensor, max_lengths: Tensor, k: int,
             alpha: float, beta: float) -> Tensor:
    """Per sentence ``(B,)``: True when no running hypothesis can still beat its best finished one.

    Log-probabilities are <= 0, so a running hypothesis' score ``s`` only falls; its final ranking
    score is at most ``s / lp(L)`` for the largest ``lp`` over the lengths it can still end at
    (``lp`` is monotonic: an endpoint of [current length, bound + 1]). When the best finished score
    reaches that for every running hypothesis of the sentence, neither can that hypothesis be pushed
    out of the beam nor can anything overtake it: the search's answer is fixed."""
    neg_inf = torch.tensor(float("-inf"), device=scores.device)
    lp_now = _length_penalty(lengths.float().clamp(min=1), alpha, beta)
    lp_end = _length_penalty((max_lengths + 1).float(), alpha, beta)
    done = torch.where(finished, scores / lp_now, neg_inf).view(-1, k).amax(1)
    running = torch.where(finished, neg_inf, scores / torch.maximum(lp_now, lp_end)).view(-1, k).amax(1)
    return done >= running


@torch.no_grad()
def beam_search(model: Seq2Seq, src: Tensor, src_lengths: Tensor, max_lengths: Tensor, beam_size: int,
                *, length_penalty_alpha: float = 1.0, length_penalty_beta: float = 0.0,
                attention: bool = False, early_stop: bool = True) -> tuple[Tensor, Tensor | None]:
    """Beam search over a padded batch: the best hypothesis per sentence, as :func:`greedy_search`.

    With ``early_stop`` (the default) a sentence leaves the batch as soon as its answer is fixed (see
    :func:`_decided`) rather than when all its hypotheses have finished; the answers are the same
    (``tests/test_algorithm_decode.py`` compares both), only fewer rows are computed."""
    batch, k = src.shape[0], int(beam_size)
    device = src.device
    rows = torch.arange(batch, device=device).repeat_interleave(k)
    enc = model.encode(src, src_lengths)
    state = model.reorder_state(model.init_state(enc), rows)
    enc = enc.index_select(rows)
    max_lengths = max_lengths.to(device).repeat_interleave(k)
    alpha, beta = float(length_penalty_alpha), float(length_penalty_beta)

    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = float("-inf")                      # all beams start as the same empty hypothesis
    scores = scores.view(-1)
    lengths = torch.zeros(batch * k, dtype=torch.long, device=device)
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
    prev = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    # Rows of the full batch still searched; history and final scores are kept at full size so that
    # sentences leaving the batch keep their results (later steps give them <pad> and no move).
    live = torch.arange(batch * k, device=device)
    final_scores, final_lengths = scores.clone(), lengths.clone()
    token_hist, parent_hist, weight_hist = [], [], []
    min_limit = int(max_lengths.min())                 # no hypothesis is forced to </s> before this step
    n_finished = 0
    t = 0
    steps = int(max_lengths.max()) + 1
    while t < steps:
        n_live = live.numel() // k
        base = (torch.arange(n_live, device=device) * k)[:, None]
        logits, state, w = model.step(prev, state, enc)
        logp = _mask_specials(torch.log_softmax(logits.float(), dim=-1))
        if t >= min_limit:
            logp = _force_eos(logp, (t >= max_lengths) & ~finished)
        vocab = logp.shape[1]
        # a finished hypothesis continues with <pad> at no cost, and with nothing else
        done = finished.nonzero().squeeze(1) if n_finished else finished[:0].long()
        if done.numel():
            logp[done] = float("-inf")
            logp[done, PAD_ID] = 0.0
        new_lengths = lengths + (~finished).long()
        candidates = scores[:, None] + logp                                    # B*K, V
        # Rank by score / lp(length). Every running hypothesis has length t + 1, so ranking all
        # candidates scaled by lp(t + 1) is the same ranking: only the one finite entry (<pad>) of
        # each finished hypothesis needs its own scale, not a division of all B*K*V candidates.
        if done.numel():
            lp_run = _length_penalty(t + 1.0, alpha, beta)
            lp_done = _length_penalty(new_lengths[done].float(), alpha, beta)
            candidates[done, PAD_ID] = scores[done] * (lp_run / lp_done)
        ranked = candidates.view(n_live, k * vocab)
        _, best = ranked.topk(k, dim=1)                                        # B, K
        parent = (base + best // vocab).view(-1)
        token = (best % vocab).view(-1)
        was_finished = finished.index_select(0, parent)
        # a finished hypothesis keeps its score (its <pad> entry above was only scaled for ranking)
        scores = torch.where(was_finished, scores.index_select(0, parent), ranked.gather(1, best).view(-1))
        lengths = new_lengths.index_select(0, parent)
        finished = was_finished | (token == EOS_ID)
        state = model.reorder_state(state, parent)
        if live.numel() == batch * k:
            token_hist.append(token)
            parent_hist.append(live.index_select(0, parent))
        else:
            token_full = torch.full((batch * k,), PAD_ID, dtype=torch.long, device=device)
            parent_full = torch.arange(batch * k, device=device)
            token_hist.append(token_full.index_copy_(0, live, token))
            parent_hist.append(parent_full.index_copy_(0, live, live.index_select(0, parent)))
        final_scores.index_copy_(0, live, scores)
        final_lengths.index_copy_(0, live, lengths)
        if attention:  # no weights after a hypothesis' </s> (as greedy_search)
            step_weights = w.index_select(0, parent).masked_fill(was_finished[:, None], 0.0)
            if live.numel() != batch * k:
                step_weights = step_weights.new_zeros(batch * k, step_weights.shape[1]).index_copy_(
                    0, live, step_weights)
            weight_hist.append(step_weights)
        t += 1
        n_finished = int(finished.sum())
        if n_finished == finished.numel():
            break
        if early_stop and n_finished:
            decided = _decided(scores, lengths, finished, max_lengths, k, alpha, beta)
            if bool(decided.all()):
                break
            if bool(decided.any()):
                keep = (~decided).repeat_interleave(k).nonzero().squeeze(1)
                live, scores, lengths, finished = live[keep], scores[keep], lengths[keep], finished[keep]
                token, max_lengths = token[keep], max_lengths[keep]
                state = model.reorder_state(state, keep)
                enc = enc.index_select(keep)
                n_finished = int(finished.sum())
                min_limit = int(max_lengths.min())
                steps = min(steps, int(max_lengths.max()) + 1)
        prev = token.masked_fill(finished, PAD_ID)

    penalty = _length_penalty(final_lengths.float().clamp(min=1), alpha, beta)
    final = (final_scores / penalty).view(batch, k)
    hyp = torch.arange(batch, device=device) * k + final.argmax(1)
    tokens, weights = [], []
    for t in range(len(token_hist) - 1, -1, -1):           # backtrack all sentences at once
        tokens.append(token_hist[t].index_select(0, hyp))
        if attention:
            weights.append(weight_hist[t].index_select(0, hyp))
        hyp = parent_hist[t].index_select(0, hyp)
    tokens.reverse()
    weights.reverse()
    return torch.stack(tokens, 1), (torch.stack(weights, 1) if attention else None)


def translate_ids(model: Seq2Seq, sources: Sequence[Sequence[int]], *, beam_size: int = 1,
                  max_seq_len_target: int = 100, length_penalty_alpha: float = 1.0,
                  length_penalty_beta: float = 0.0, attention: bool = False, batch_size: int = 64,
                  device: torch.device | str | None = None) -> list[Hypothesis]:
    """Decode many sources (id lists without ``</s>``, already truncated), in length-sorted batches.

    ``beam_size`` 1 is greedy. Results are in input order; ``attention`` rows are output tokens and
    columns the source tokens (the ``</s>`` column is dropped).
    """
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    was_training = model.training
    model.eval()
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    results: list[Hypothesis | None] = [None] * len(sources)
    try:
        for start in range(0, len(order), max(1, batch_size)):
            chunk = order[start:start + batch_size]
            lengths = torch.tensor([len(sources[i]) + 1 for i in chunk], dtype=torch.long)
            src = torch.zeros(len(chunk), int(lengths.max()), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids = list(sources[i]) + [EOS_ID]
                src[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            src = src.to(device)
            bound = output_length_bound(lengths - 1, max_seq_len_target)
            if beam_size <= 1:
                tokens, weights = greedy_search(model, src, lengths.to(device), bound, attention)
            else:
                tokens, weights = beam_search(model, src, lengths.to(device), bound, beam_size,
                                              length_penalty_alpha=length_penalty_alpha,
                                              length_penalty_beta=length_penalty_beta, attention=attention)
            for i, hyp in zip(chunk, _collect(tokens, weights, lengths - 1)):
                results[i] = hyp
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]
