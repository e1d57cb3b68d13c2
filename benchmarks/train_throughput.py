"""Training throughput, ours vs JoeyNMT 2.3.0: non-pad target tokens per second on enja train.

Both models are the matched model of ``benchmarks/common.py`` (embeddings 256, bi-LSTM encoder 256 in
total, LSTM decoder 256, MLP attention, batches of 64 sentences, length limit 50), built from the
same vocabularies (our preprocessing), on 2 threads each. The parameter counts are printed and must
agree within 2 %.

- Ours: this process builds ``s2s_algorithm.train.Trainer`` from an ``/opt/ml`` tree (the object
  ``s2s-train`` runs) and calls, per update, what ``Trainer.run`` calls: ``make_batch`` on the
  sampler's next batch, ``scheduler.step_update`` and ``Trainer._train_step`` (forward, loss,
  backward, clipping, optimizer step).
- JoeyNMT: ``benchmarks/joeynmt/peer_worker.py`` in the peer venv builds JoeyNMT's model, data and
  ``TrainManager`` as ``python -m joeynmt train`` does and runs the inner loop of its
  ``train_and_validate`` (``_train_step``, clipping, ``optimizer.step``, ``zero_grad``).

After ``--warmup`` updates each, ``--updates`` measured updates are split into ``--windows`` windows
that alternate between the two (ours, peer, peer, ours, ...), so both see the same machine load; no
checkpointing or validation runs inside a window. Reported: tokens/s per window, the median and the
pooled rate, the ratio, and the load average around each window.

Usage::

    .venv/bin/python benchmarks/train_throughput.py                 # 50 warm-up, 300 measured (3 x 100)
    .venv/bin/python benchmarks/train_throughput.py --profile 30    # also: where our time goes
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

logger = logging.getLogger("train_throughput")


class OurTrainer:
    """Our training program's step, driven update by update."""

    def __init__(self, data: common.PreparedData, hyperparameters: dict[str, str], threads: int):
        import torch

        from s2s_aws.contract.hyperparameters import Hyperparameters
        from s2s_algorithm import distributed
        from s2s_algorithm.paths import MLPaths
        from s2s_algorithm.train import Trainer

        torch.set_num_threads(threads)
        hp = Hyperparameters.from_strings(hyperparameters)
        self.trainer = Trainer(MLPaths(data.ml_root), hp, distributed.WorldPlan(), 0, torch.device("cpu"))
        self.trainer.model.train()
        self.epoch = 0
        self.batches = self.trainer.sampler.epoch(self.epoch)
        self.position = 0

    @property
    def params(self) -> int:
        return self.trainer.model.num_parameters()

    def _next_indices(self) -> Any:
        if self.position >= len(self.batches):
            self.epoch += 1
            self.batches = self.trainer.sampler.epoch(self.epoch)
            self.position = 0
        indices = self.batches[self.position]
        self.position += 1
        return indices

    def train(self, updates: int) -> dict[str, Any]:
        from s2s_algorithm.data import make_batch

        t = self.trainer
        tokens = sentences = 0
        nll = 0.0
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(int(updates)):
            batch = make_batch(t.train_data, self._next_indices())
            t.scheduler.step_update(t.state.step)
            step_nll, _correct, ntok = t._train_step(batch)
            t.state.step += 1
            tokens += int(ntok)
            sentences += int(batch.src.shape[0])
            nll += float(step_nll)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        return {"updates": int(updates), "tokens": tokens, "sentences": sentences, "seconds": seconds,
                "cpu_seconds": cpu, "loss": nll / max(tokens, 1)}


def profile_ours(ours: OurTrainer, updates: int) -> str:
    """torch.profiler over ``updates`` of our updates: the operators that take the time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        ours.train(updates)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="enja corpus folder (default ../shared/data/enja)")
    ap.add_argument("--work-dir", default="/tmp/s2s-bench", help="scratch folder (default %(default)s)")
    ap.add_argument("--peer-venv", default=str(common.DEFAULT_PEER_VENV))
    ap.add_argument("--warmup", type=int, default=50, help="updates before measuring, each side")
    ap.add_argument("--updates", type=int, default=300, help="measured updates, each side")
    ap.add_argument("--windows", type=int, default=3, help="alternating windows the measured updates are split into")
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="afterwards, profile N of our updates")
    ap.add_argument("--attention-hidden", type=int, default=0, metavar="A",
                    help="our rnn_attention_num_hidden (default: the one that matches JoeyNMT's parameter count)")
    ap.add_argument("--allow-param-mismatch", action="store_true",
                    help="with --attention-hidden: report instead of failing when the counts are > 2%% apart")
    ap.add_argument("--json", help="also write the results here")
    opts = ap.parse_args(argv)
    common.setup_logging()
    if opts.windows < 1 or opts.updates < opts.windows or opts.warmup < 0:
        raise SystemExit("--updates must be >= --windows >= 1 and --warmup >= 0")

    work = Path(opts.work_dir)
    data = common.prepare_data(common.find_data_dir(opts.data), work)
    python = common.ensure_peer_venv(Path(opts.peer_venv))
    attention = opts.attention_hidden or common.choose_attention_hidden(data.src_vocab_size, data.trg_vocab_size)
    hp = common.our_hyperparameters(attention, learning_rate=0.001, checkpoint_frequency_num_batches=10 ** 6)
    joey_cfg = common.write_joey_config(
        work / "train_throughput" / "joey.yaml",
        common.joey_config_values(data, work / "train_throughput" / "joey_model", name="train_throughput"))

    machine = common.machine_summary()
    print(f"machine: {json.dumps(machine)}", flush=True)
    ours = OurTrainer(data, hp, opts.threads)
    with common.PeerWorker(python, work / "train_throughput" / "peer.log", threads=opts.threads) as peer:
        peer_params = int(peer.call("setup_train", config=str(joey_cfg))["params"])
        diff = common.check_param_counts(ours.params, peer_params,
                                         tolerance=1.0 if opts.allow_param_mismatch else common.PARAM_TOLERANCE)
        print(f"parameters: ours {ours.params:,} (rnn_attention_num_hidden={attention}), JoeyNMT {peer_params:,} "
              f"({diff:.2%} apart)", flush=True)
        if opts.warmup:
            ours.train(opts.warmup)
            peer.call("train", updates=opts.warmup)
        sizes = [opts.updates // opts.windows + (1 if i < opts.updates % opts.windows else 0) for i in range(opts.windows)]
        results: dict[str, list[dict[str, Any]]] = {"ours": [], "joeynmt": []}
        for i, n in enumerate(sizes):
            order = ("ours", "joeynmt") if i % 2 == 0 else ("joeynmt", "ours")
            for side in order:
                load_before = common.load_average()[0]
                r = ours.train(n) if side == "ours" else peer.call("train", updates=n)
                r["load"] = round((load_before + common.load_average()[0]) / 2, 2)
                r["tokens_per_s"] = r["tokens"] / r["seconds"]
                results[side].append(r)
                print(f"window {i + 1} {side}: {n} updates, {r['tokens']} tokens in {r['seconds']:.1f}s = "
                      f"{r['tokens_per_s']:.0f} tokens/s, {r['tokens'] / r['cpu_seconds']:.0f} per CPU-second "
                      f"(loss {r['loss']:.3f}, load {r['load']})", flush=True)

    summary: dict[str, Any] = {"machine": machine, "params": {"ours": ours.params, "joeynmt": peer_params},
                               "rnn_attention_num_hidden": attention, "windows": results}
    for side, rs in results.items():
        if any(r["tokens"] <= 0 or r["seconds"] <= 0 for r in rs):
            raise common.BenchmarkError(f"{side} produced an empty window: {rs}")
        summary[side] = {"median_tokens_per_s": common.median(r["tokens_per_s"] for r in rs),
                         "pooled_tokens_per_s": sum(r["tokens"] for r in rs) / sum(r["seconds"] for r in rs),
                         "tokens_per_update": sum(r["tokens"] for r in rs) / sum(r["updates"] for r in rs),
                         "tokens_per_cpu_s": sum(r["tokens"] for r in rs) / sum(r["cpu_seconds"] for r in rs),
                         "loads": [r["load"] for r in rs]}
    ratio = summary["ours"]["median_tokens_per_s"] / summary["joeynmt"]["median_tokens_per_s"]
    summary["ratio_median"] = ratio
    rows = [(side, f"{summary[side]['median_tokens_per_s']:.0f}", f"{summary[side]['pooled_tokens_per_s']:.0f}",
             " / ".join(f"{r['tokens_per_s']:.0f}" for r in results[side]),
             f"{summary[side]['tokens_per_cpu_s']:.0f}", f"{summary[side]['tokens_per_update']:.1f}",
             ", ".join(str(x) for x in summary[side]["loads"]))
            for side in ("ours", "joeynmt")]
    print(common.format_table(["implementation", "median tokens/s", "pooled tokens/s", "per window",
                               "tokens per CPU-second", "tokens/update", "load avg per window"], rows))
    print(f"ratio ours / JoeyNMT (medians): {ratio:.2f}x")
    if opts.profile:
        print(profile_ours(ours, opts.profile))
    if opts.json:
        common.atomic_write_text(Path(opts.json), json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    common.run_main("train_throughput", main)
