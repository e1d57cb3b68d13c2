"""Our training step in float32 vs ``mixed_precision=bf16`` on the CPU: target tokens per second.

The matched enja model and data of ``train_throughput.py``, two trainers from the same seed, the same
batches in the same order, alternating windows after a warm-up. The loss of each window is printed
next to the speed: bf16 autocast must not change what is learned at this scale (the script fails if
the two losses drift more than 2% apart). JoeyNMT has no CPU mixed precision, so the peer is our own
float32 step. The default ``mixed_precision=auto`` stays float32 on CPUs: bf16 is only fast where
the CPU computes it natively (AVX512-BF16 or AMX); elsewhere oneDNN emulates it.

Usage::

    .venv/bin/python benchmarks/train_precision.py                   # 20 warm-up, 4 x 60 updates
    .venv/bin/python benchmarks/train_precision.py --updates 400 --windows 4
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from train_throughput import OurTrainer  # noqa: E402

MODES = ("off", "bf16")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="enja corpus folder (default ../shared/data/enja)")
    ap.add_argument("--work-dir", default="/tmp/s2s-bench", help="scratch folder (default %(default)s)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--updates", type=int, default=240, help="measured updates per precision")
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--json", help="also write the results here")
    opts = ap.parse_args(argv)
    common.setup_logging()
    if opts.windows < 1 or opts.updates < opts.windows:
        raise SystemExit("--updates must be >= --windows >= 1")

    data = common.prepare_data(common.find_data_dir(opts.data), Path(opts.work_dir))
    attention = common.choose_attention_hidden(data.src_vocab_size, data.trg_vocab_size)
    machine = common.machine_summary()
    print(f"machine: {json.dumps(machine)}", flush=True)
    trainers = {mode: OurTrainer(data, common.our_hyperparameters(
        attention, learning_rate=0.001, checkpoint_frequency_num_batches=10 ** 6, seed=1, mixed_precision=mode),
        opts.threads) for mode in MODES}
    for trainer in trainers.values():
        trainer.train(opts.warmup)
    per_window = opts.updates // opts.windows
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for i in range(opts.windows):
        for mode in (MODES if i % 2 == 0 else MODES[::-1]):
            r = trainers[mode].train(per_window)
            r["tokens_per_s"] = r["tokens"] / r["seconds"]
            results[mode].append(r)
            print(f"window {i + 1} {mode}: {r['tokens_per_s']:.0f} tokens/s (loss {r['loss']:.3f})", flush=True)
    for a, b in zip(results["off"], results["bf16"]):
        if a["tokens"] != b["tokens"]:
            raise common.BenchmarkError("the two trainers saw different batches")
        if abs(a["loss"] - b["loss"]) > 0.02 * a["loss"]:
            raise common.BenchmarkError(f"bf16 loss {b['loss']:.3f} drifted from float32 {a['loss']:.3f}")
    summary = {mode: common.median(r["tokens_per_s"] for r in rs) for mode, rs in results.items()}
    ratio = summary["bf16"] / summary["off"]
    print(f"median tokens/s: float32 {summary['off']:.0f}, bf16 {summary['bf16']:.0f} ({ratio:.2f}x); "
          f"last window loss {results['off'][-1]['loss']:.3f} / {results['bf16'][-1]['loss']:.3f}")
    if opts.json:
        Path(opts.json).write_text(json.dumps({"machine": machine, "windows": results, "median": summary,
                                               "ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    common.run_main("train_precision", main)
