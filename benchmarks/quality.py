"""Quality within a fixed time budget, ours vs JoeyNMT 2.3.0: sacreBLEU on the enja test set.

Both train the matched model (``benchmarks/common.py``) on enja train with dev as validation, on 2
threads each, for the same wall-clock budget (``--budget-minutes``, default 10) of their own running
time. The two trainings are started together and take turns on the machine in 30-second slices
(the one not running is SIGSTOPped), so both see the same background load; start-up (data loading)
counts against each budget.

- Ours: ``s2s-train`` (``python -m s2s_algorithm.train``) on an ``/opt/ml`` tree built from our
  preprocessing; Adam 0.001, evaluation + checkpoint every 200 updates keeping the best validation
  perplexity, no early stop inside the budget. At the budget it gets SIGTERM (what SageMaker's
  StopTrainingJob sends): it stops after the current update and writes the best model so far.
- JoeyNMT: ``python -m joeynmt train --skip-test`` with ``benchmarks/joeynmt/rnn_matched.yaml``
  (same vocabularies, Adam 0.001 constant, tokens-normalised loss, gradient values clipped at 1,
  validation every 200 updates keeping the best perplexity). At the budget it gets SIGINT, which its
  training loop handles by saving and exiting; ``best.ckpt`` is the model evaluated.

Then both translate test.en with beam 5 (length penalty alpha 1.0, beta 0), batches of 64, and the
same sacreBLEU call scores both against test.ja (``tokenize='none'``, the corpus is pre-tokenized).
The run fails (exit 1) when a side has no best checkpoint or scores BLEU < 1.

Usage::

    .venv/bin/python benchmarks/quality.py                       # 10 minutes each (~25 minutes in all)
    .venv/bin/python benchmarks/quality.py --budget-minutes 3    # a quick look
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

logger = logging.getLogger("quality")

CHECKPOINT_EVERY = 200
MIN_BLEU = 1.0


@dataclass
class TrainedModels:
    """Where the two trained models are, and how their training went."""

    ours_model_dir: Path
    joey_config: Path
    joey_checkpoint: Path
    attention_hidden: int
    report: dict[str, Any]


def our_training_hyperparameters(attention: int, learning_rate: float,
                                 checkpoint_every: int = CHECKPOINT_EVERY) -> dict[str, str]:
    return common.our_hyperparameters(
        attention, learning_rate=learning_rate, optimizer_type="adam",
        checkpoint_frequency_num_batches=checkpoint_every, checkpoint_threshold=1000,
        optimized_metric="perplexity", bleu_sample_size=0, beam_size=5, seed=1)


def _our_summary(log: str) -> dict[str, Any]:
    steps = [int(s) for s in re.findall(r"^step (\d+) epoch", log, flags=re.M)]
    ppl = [float(v) for v in re.findall(r"#metric validation:perplexity=([0-9.eE+-]+)", log)]
    saved = re.findall(r"training state saved at step (\d+)", log)
    return {"updates": int(saved[-1]) if saved else (steps[-1] if steps else 0),
            "validation_perplexities": ppl, "best_validation_perplexity": min(ppl) if ppl else None}


def _joey_summary(log: str) -> dict[str, Any]:
    steps = common.parse_joey_log(log)
    interrupted = re.findall(r"Interrupt at epoch \d+, step (\d+)", log)
    vals = common.parse_joey_validations(log)
    return {"updates": int(interrupted[-1]) if interrupted else (steps[-1].step if steps else 0),
            "validation_perplexities": [v["ppl"] for v in vals],
            "best_validation_perplexity": min(v["ppl"] for v in vals) if vals else None,
            "validation_bleu_greedy": [v["bleu"] for v in vals]}


def train_both(data: common.PreparedData, python: Path, work: Path, budget_s: float, *,
               learning_rate: float = 0.001, slice_s: float = 30.0, threads: int = common.THREADS,
               checkpoint_every: int = CHECKPOINT_EVERY) -> TrainedModels:
    """Train ours and JoeyNMT for ``budget_s`` seconds of running time each, interleaved."""
    attention = common.choose_attention_hidden(data.src_vocab_size, data.trg_vocab_size)
    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    # ours: a fresh /opt/ml tree sharing the prepared channel files
    root = work / "ours_ml"
    for channel in ("train", "validation", "vocab"):
        shutil.copytree(data.ml_root / "input" / "data" / channel, root / "input" / "data" / channel)
    hp = our_training_hyperparameters(attention, learning_rate, checkpoint_every)
    common.atomic_write_text(root / "input" / "config" / "hyperparameters.json", json.dumps(hp, indent=2))
    joey_dir = work / "joey_model"
    joey_cfg = common.write_joey_config(work / "joey.yaml", common.joey_config_values(
        data, joey_dir, name="quality", learning_rate=learning_rate, validation_freq=checkpoint_every,
        logging_freq=max(1, min(100, checkpoint_every // 2))))

    env = common.thread_env(threads)
    ours_log, joey_log = work / "ours_train.log", work / "joey_stdout.log"
    procs: dict[str, subprocess.Popen] = {}
    with open(ours_log, "wb") as ol, open(joey_log, "wb") as jl:
        procs["ours"] = subprocess.Popen([sys.executable, "-m", "s2s_algorithm.train"], stdout=ol,
                                         stderr=subprocess.STDOUT, env={**env, "S2S_ML_ROOT": str(root)})
        procs["joeynmt"] = subprocess.Popen([str(python), "-m", "joeynmt", "train", str(joey_cfg), "--skip-test"],
                                            stdout=jl, stderr=subprocess.STDOUT, env=env, cwd=str(work))
        inter = common.Interleaver(procs, budget_s, slice_s=slice_s,
                                   stop_signals={"ours": signal.SIGTERM, "joeynmt": signal.SIGINT})
        try:
            used = inter.run()
        except BaseException:
            inter.kill_all()
            raise
    ours_text = ours_log.read_text(encoding="utf-8", errors="replace")
    joey_train_log = joey_dir / "train.log"
    joey_text = joey_train_log.read_text(encoding="utf-8", errors="replace") if joey_train_log.is_file() else ""
    ours_model = root / "model"
    joey_best = joey_dir / "best.ckpt"
    if procs["ours"].returncode != 0 or not (ours_model / "model.pt").is_file():
        raise common.BenchmarkError(f"our training ended with exit {procs['ours'].returncode} and no model in "
                                    f"{ours_model}; log {ours_log}:\n{ours_text[-3000:]}")
    if not joey_best.exists():
        raise common.BenchmarkError(f"JoeyNMT left no best checkpoint in {joey_dir} (exit {procs['joeynmt'].returncode}; "
                                    f"did it reach a validation within the budget?); log {joey_train_log}:\n"
                                    f"{joey_text[-3000:] or joey_log.read_text(errors='replace')[-3000:]}")
    report = {"budget_s": budget_s, "running_s": used, "load_avg_samples": inter.loads,
              "ours": _our_summary(ours_text), "joeynmt": _joey_summary(joey_text),
              "ours_hyperparameters": hp, "joey_config": str(joey_cfg)}
    return TrainedModels(ours_model, joey_cfg, joey_best.resolve(), attention, report)


def translate_ours(model_dir: Path, sentences: list[str], beam_size: int, batch_size: int,
                   threads: int = common.THREADS) -> list[str]:
    import torch

    from s2s_algorithm.translator import load_translator

    torch.set_num_threads(threads)
    tr = load_translator(model_dir, device="cpu")
    tr.batch_size = batch_size
    return [t.target for t in tr.translate(sentences, beam_size=beam_size)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="enja corpus folder (default ../shared/data/enja)")
    ap.add_argument("--work-dir", default="/tmp/s2s-bench", help="scratch folder (default %(default)s)")
    ap.add_argument("--peer-venv", default=str(common.DEFAULT_PEER_VENV))
    ap.add_argument("--budget-minutes", type=float, default=10.0, help="training time each (default %(default)s)")
    ap.add_argument("--learning-rate", type=float, default=0.001)
    ap.add_argument("--slice-seconds", type=float, default=30.0, help="interleaving slice (default %(default)s)")
    ap.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY,
                    help="updates between validations, both sides (default %(default)s)")
    ap.add_argument("--json", help="also write the results here")
    opts = ap.parse_args(argv)
    common.setup_logging()

    work = Path(opts.work_dir)
    data = common.prepare_data(common.find_data_dir(opts.data), work)
    python = common.ensure_peer_venv(Path(opts.peer_venv))
    machine = common.machine_summary()
    print(f"machine: {json.dumps(machine)}", flush=True)
    trained = train_both(data, python, work / "quality", opts.budget_minutes * 60, learning_rate=opts.learning_rate,
                         slice_s=opts.slice_seconds, checkpoint_every=opts.checkpoint_every)
    rep = trained.report
    print(f"trained: ours {rep['ours']['updates']} updates, JoeyNMT {rep['joeynmt']['updates']} updates; running "
          f"seconds {json.dumps({k: round(v, 1) for k, v in rep['running_s'].items()})}", flush=True)

    sources = data.test_source.read_text(encoding="utf-8").splitlines()
    references = data.test_reference.read_text(encoding="utf-8").splitlines()
    ours_hyps = translate_ours(trained.ours_model_dir, sources, beam_size=5, batch_size=64)
    out_dir = work / "quality"
    common.atomic_write_text(out_dir / "ours.test.hyp", "".join(h + "\n" for h in ours_hyps))
    with common.PeerWorker(python, out_dir / "peer_decode.log") as peer:
        setup = peer.call("setup_decode", config=str(trained.joey_config), checkpoint=str(trained.joey_checkpoint))
        peer.call("decode", beam_size=5, batch_size=64, beam_alpha=1.0, output=str(out_dir / "joey.test.hyp"))
    joey_hyps = (out_dir / "joey.test.hyp").read_text(encoding="utf-8").splitlines()
    if len(joey_hyps) != len(sources):
        raise common.BenchmarkError(f"JoeyNMT translated {len(joey_hyps)} of {len(sources)} test sentences")

    rows = []
    result: dict[str, Any] = {"machine": machine, "report": rep, "params": {"joeynmt": setup["params"]}}
    for side, hyps in (("ours", ours_hyps), ("joeynmt", joey_hyps)):
        bleu, signature = common.corpus_bleu(hyps, references)
        mean_len = sum(len(h.split()) for h in hyps) / len(hyps)
        result[side] = {"bleu": bleu, "signature": signature, "mean_output_tokens": mean_len}
        s = rep[side]
        best = s["best_validation_perplexity"]
        rows.append((side, f"{bleu:.2f}", s["updates"], f"{best:.2f}" if best else "-", f"{mean_len:.2f}"))
        print(f"{side}: BLEU {bleu:.2f} ({signature})", flush=True)
    ref_len = sum(len(r.split()) for r in references) / len(references)
    print(common.format_table(["implementation", "test BLEU (beam 5)", "updates in budget", "best dev perplexity",
                               "mean output tokens"], rows))
    print(f"reference mean tokens {ref_len:.2f}; budget {opts.budget_minutes:g} min each; load average samples "
          f"min {min(rep['load_avg_samples']):.2f} median {common.median(rep['load_avg_samples']):.2f} "
          f"max {max(rep['load_avg_samples']):.2f}")
    ratio = result["ours"]["bleu"] - result["joeynmt"]["bleu"]
    print(f"BLEU ours - JoeyNMT: {ratio:+.2f}")
    if opts.json:
        common.atomic_write_text(Path(opts.json), json.dumps(result, indent=2) + "\n")
    low = [side for side in ("ours", "joeynmt") if result[side]["bleu"] < MIN_BLEU]
    if low:
        raise common.BenchmarkError(f"BLEU below {MIN_BLEU} for {', '.join(low)}: the training did not work; "
                                    f"see the logs in {out_dir}")
    return 0


if __name__ == "__main__":
    common.run_main("quality", main)
