"""Decoding throughput, ours vs JoeyNMT 2.3.0: sentences per second on the enja test set.

Greedy and beam 5 (length penalty alpha 1.0, beta 0 on both sides: JoeyNMT's ``beam_alpha`` 1.0 is the
same GNMT penalty with beta 0), batches of 1, 16 and 64 sentences, 2 threads each, text in and text
out (tokens to ids, search, ids to tokens):

- ours: ``s2s_algorithm.translator.Translator.translate`` (batched greedy/beam search of ``decode.py``);
- JoeyNMT: its ``prediction.predict`` (its own batching and search), in the peer venv.

The two models are not the same weights (different implementations); both are the matched model
trained for the same time budget: by default the models ``benchmarks/quality.py`` left in
``WORK/quality``; without them both are trained here for ``--train-minutes`` each (interleaved).
Each condition runs ``--repeats`` times, alternating ours and JoeyNMT; the median is reported, with
mean output lengths (outputs differ, so lengths tell whether the work differed). It also checks
that our beam search with beam 1 gives the same translations as our greedy search.

Usage::

    .venv/bin/python benchmarks/decode_throughput.py                      # models from quality.py
    .venv/bin/python benchmarks/decode_throughput.py --train-minutes 3    # train both here first
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import quality  # noqa: E402

logger = logging.getLogger("decode_throughput")

BEAMS = (1, 5)
BATCHES = (1, 16, 64)


def beam1_vs_greedy(translator: Any, sources: list[list[int]], batch_size: int = 64) -> int:
    """How many sentences our beam search with beam 1 translates exactly as our greedy search."""
    import torch

    from s2s_algorithm.decode import beam_search, output_length_bound, translate_ids, EOS_ID

    model, hp = translator.model, translator.hp
    greedy = translate_ids(model, sources, beam_size=1, max_seq_len_target=int(hp.max_seq_len_target),
                           batch_size=batch_size, device="cpu")
    same = 0
    for start in range(0, len(sources), batch_size):
        chunk = sources[start:start + batch_size]
        lengths = torch.tensor([len(s) + 1 for s in chunk])
        src = torch.zeros(len(chunk), int(lengths.max()), dtype=torch.long)
        for row, ids in enumerate(chunk):
            src[row, :len(ids) + 1] = torch.tensor(list(ids) + [EOS_ID])
        tokens, _ = beam_search(model, src, lengths, output_length_bound(lengths - 1, int(hp.max_seq_len_target)), 1,
                                length_penalty_alpha=float(hp.length_penalty_alpha),
                                length_penalty_beta=float(hp.length_penalty_beta))
        for row in range(len(chunk)):
            ids = tokens[row].tolist()
            cut = next((i for i, t in enumerate(ids) if t in (EOS_ID, 0)), len(ids))
            same += int(ids[:cut] == greedy[start + row].ids)
    return same


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="enja corpus folder (default ../shared/data/enja)")
    ap.add_argument("--work-dir", default="/tmp/s2s-bench", help="scratch folder (default %(default)s)")
    ap.add_argument("--peer-venv", default=str(common.DEFAULT_PEER_VENV))
    ap.add_argument("--models-from", help="folder written by quality.py (default WORK/quality)")
    ap.add_argument("--train-minutes", type=float, default=0.0,
                    help="train both models here for this long each instead of reusing quality.py's")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--profile", action="store_true",
                    help="afterwards, profile our greedy and beam-5 decoding at batch 64 (torch.profiler)")
    ap.add_argument("--json", help="also write the results here")
    opts = ap.parse_args(argv)
    common.setup_logging()

    import torch

    from s2s_algorithm.translator import load_translator

    torch.set_num_threads(opts.threads)
    work = Path(opts.work_dir)
    data = common.prepare_data(common.find_data_dir(opts.data), work)
    python = common.ensure_peer_venv(Path(opts.peer_venv))
    if opts.train_minutes > 0:
        trained = quality.train_both(data, python, work / "decode_models", opts.train_minutes * 60)
        ours_dir, joey_cfg, joey_ckpt = trained.ours_model_dir, trained.joey_config, trained.joey_checkpoint
        budget = f"{opts.train_minutes:g} min each (trained here)"
    else:
        src = Path(opts.models_from or work / "quality")
        ours_dir, joey_cfg, joey_ckpt = src / "ours_ml" / "model", src / "joey.yaml", src / "joey_model" / "best.ckpt"
        missing = [str(p) for p in (ours_dir / "model.pt", joey_cfg, joey_ckpt) if not p.exists()]
        if missing:
            raise common.BenchmarkError(f"no trained models: {', '.join(missing)} missing. Run benchmarks/quality.py "
                                        "first, or pass --train-minutes N to train both here.")
        budget = f"models of {src} (quality.py's budget)"
    sentences = data.test_source.read_text(encoding="utf-8").splitlines()
    machine = common.machine_summary()
    print(f"machine: {json.dumps(machine)}", flush=True)
    print(f"models: {budget}; {len(sentences)} test sentences", flush=True)

    ours = load_translator(ours_dir, device="cpu")
    out_dir = work / "decode"
    results: dict[str, Any] = {"machine": machine, "models": budget, "sentences": len(sentences), "conditions": []}
    with common.PeerWorker(python, out_dir / "peer.log", threads=opts.threads) as peer:
        info = peer.call("setup_decode", config=str(joey_cfg), checkpoint=str(joey_ckpt))
        if info["sentences"] != len(sentences):
            raise common.BenchmarkError(f"JoeyNMT loaded {info['sentences']} test sentences, ours {len(sentences)}")
        diff = common.check_param_counts(ours.model.num_parameters(), int(info["params"]))
        print(f"parameters: ours {ours.model.num_parameters():,}, JoeyNMT {info['params']:,} ({diff:.2%} apart)")
        # warm-up (not timed): one pass each
        ours.batch_size = 64
        ours.translate(sentences[:64], beam_size=1)
        peer.call("decode", beam_size=1, batch_size=64, beam_alpha=1.0, output=str(out_dir / "warmup.hyp"))
        rows = []
        for beam in BEAMS:
            for batch in BATCHES:
                rates: dict[str, list[float]] = {"ours": [], "joeynmt": []}
                lengths: dict[str, float] = {}
                loads = []
                for rep in range(opts.repeats):
                    for side in (("ours", "joeynmt") if rep % 2 == 0 else ("joeynmt", "ours")):
                        load = common.load_average()[0]
                        if side == "ours":
                            ours.batch_size = batch
                            start = time.perf_counter()
                            hyps = [t.target for t in ours.translate(sentences, beam_size=beam)]
                            seconds = time.perf_counter() - start
                            n = len(hyps)
                            lengths["ours"] = sum(len(h.split()) for h in hyps) / max(n, 1)
                            common.atomic_write_text(out_dir / f"ours.b{beam}.n{batch}.hyp", "".join(h + "\n" for h in hyps))
                        else:
                            r = peer.call("decode", beam_size=beam, batch_size=batch, beam_alpha=1.0,
                                          output=str(out_dir / f"joey.b{beam}.n{batch}.hyp"))
                            seconds, n = r["seconds"], r["sentences"]
                            lengths["joeynmt"] = r["tokens"] / max(n, 1)
                        loads.append(round((load + common.load_average()[0]) / 2, 2))
                        if n == 0 or seconds <= 0:
                            raise common.BenchmarkError(f"{side} decoded nothing (beam {beam}, batch {batch})")
                        rates[side].append(n / seconds)
                for side in rates:
                    if lengths[side] < 1.0:
                        raise common.BenchmarkError(f"{side}'s outputs average {lengths[side]:.2f} tokens (beam {beam}, "
                                                    f"batch {batch}): the model is not trained enough to measure")
                med = {side: common.median(v) for side, v in rates.items()}
                ratio = med["ours"] / med["joeynmt"]
                cond = {"beam": beam, "batch": batch, "sentences_per_s": rates, "median": med, "ratio": ratio,
                        "mean_output_tokens": lengths, "loads": loads}
                results["conditions"].append(cond)
                name = "greedy" if beam == 1 else f"beam {beam}"
                rows.append((name, batch, f"{med['ours']:.1f}", f"{med['joeynmt']:.1f}", f"{ratio:.2f}x",
                             f"{lengths['ours']:.2f} / {lengths['joeynmt']:.2f}",
                             f"{min(loads):.1f}-{max(loads):.1f}"))
                print(f"{name}, batch {batch}: ours {med['ours']:.1f} sent/s, JoeyNMT {med['joeynmt']:.1f} sent/s "
                      f"({ratio:.2f}x); mean output tokens {lengths['ours']:.2f} / {lengths['joeynmt']:.2f}", flush=True)

    from s2s_aws.contract import vocab as vocab_format

    ids = [vocab_format.encode_tokens(s.split(), ours.src_vocab)[:int(ours.hp.max_seq_len_source)] for s in sentences]
    same = beam1_vs_greedy(ours, ids)
    results["ours_beam1_equals_greedy"] = same
    print(common.format_table(["search", "batch", "ours sent/s", "JoeyNMT sent/s", "ratio", "mean output tokens (ours / JoeyNMT)",
                               "load avg"], rows))
    print(f"ours: beam search with beam 1 == greedy for {same} of {len(ids)} sentences")
    if opts.profile:
        from torch.profiler import ProfilerActivity, profile

        ours.batch_size = 64
        for beam in BEAMS:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                ours.translate(sentences, beam_size=beam)
            print(f"ours, beam {beam}, batch 64:")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    if opts.json:
        common.atomic_write_text(Path(opts.json), json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    common.run_main("decode_throughput", main)
