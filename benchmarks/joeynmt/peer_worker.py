"""Drive JoeyNMT 2.3.0 for the benchmarks; runs inside the peer venv (``benchmarks/.venv-joeynmt``).

Reads one JSON command per line on stdin and answers one JSON line on stdout (everything JoeyNMT
logs goes to stderr). Commands:

- ``{"cmd": "setup_train", "config": PATH}``: build the model, data and ``TrainManager`` exactly as
  ``python -m joeynmt train`` does -> ``{"params": N}``
- ``{"cmd": "train", "updates": N}``: run N updates of JoeyNMT's own training step (``_train_step``,
  gradient clipping, ``optimizer.step``, scheduler, ``zero_grad``, as in ``train_and_validate``),
  drawing batches from its own data iterator -> ``{"updates", "tokens", "sentences", "seconds",
  "cpu_seconds", "loss"}``;
  ``tokens`` are non-pad target tokens (JoeyNMT's ``batch.ntokens``, ``</s>`` included)
- ``{"cmd": "setup_decode", "config": PATH, "checkpoint": PATH}``: load a trained model and the
  config's test set -> ``{"params": N, "sentences": N}``
- ``{"cmd": "decode", "beam_size": K, "batch_size": B, "beam_alpha": A, "output": PATH}``: translate
  the test set with JoeyNMT's ``predict`` (its batching and search), write the hypotheses ->
  ``{"sentences", "seconds", "tokens"}``
- ``{"cmd": "quit"}``

Usage (by ``benchmarks/common.py: PeerWorker``)::

    benchmarks/.venv-joeynmt/bin/python benchmarks/joeynmt/peer_worker.py --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any


class Peer:
    """The JoeyNMT objects one benchmark needs."""

    def __init__(self) -> None:
        self.trainer: Any = None
        self.train_iter: Any = None
        self.batches: Any = None
        self.epoch = 0
        self.model: Any = None
        self.args: Any = None
        self.test_data: Any = None

    # -- training ----------------------------------------------------------------------------
    def setup_train(self, config: str) -> dict[str, Any]:
        from joeynmt.config import load_config, parse_global_args, set_validation_args
        from joeynmt.helpers import make_model_dir
        from joeynmt.prediction import prepare
        from joeynmt.training import TrainManager

        cfg = load_config(Path(config))
        make_model_dir(Path(cfg["model_dir"]), overwrite=True)
        args = parse_global_args(cfg, rank=0, mode="train")
        model, train_data, _dev, _test = prepare(args, rank=0, mode="train")
        self.trainer = TrainManager(model=model, model_dir=args.model_dir, device=args.device, n_gpu=args.n_gpu,
                                    rank=0, num_workers=args.num_workers, autocast=args.autocast, seed=args.seed,
                                    train_args=args.train, dev_args=set_validation_args(args.test))
        t = self.trainer
        self.train_iter = train_data.make_iter(batch_size=t.args.batch_size, batch_type=t.args.batch_type,
                                               seed=t.seed, shuffle=t.args.shuffle, num_workers=t.num_workers,
                                               device=t.device, eos_index=t.model.eos_index,
                                               pad_index=t.model.pad_index)
        self.train_data = train_data
        self._new_epoch()
        t.model.train()
        t.model.zero_grad()
        return {"params": sum(p.numel() for p in t.model.parameters()), "train_sentences": len(train_data)}

    def _new_epoch(self) -> None:
        self.epoch += 1
        self.train_data.seed = self.trainer.seed + self.epoch
        self.train_iter.batch_sampler.set_seed(self.trainer.seed + self.epoch)
        self.batches = iter(self.train_iter)

    def _next_batch(self) -> Any:
        try:
            return next(self.batches)
        except StopIteration:
            self._new_epoch()
            return next(self.batches)

    def train(self, updates: int) -> dict[str, Any]:
        t = self.trainer
        tokens = sentences = 0
        loss = 0.0
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(int(updates)):
            batch = self._next_batch()
            batch_loss, _correct = t._train_step(batch)          # forward + backward, JoeyNMT's own
            if t.clip_grad_fun is not None:
                t.clip_grad_fun(parameters=t.model.parameters())
            t.optimizer.step()
            if t.scheduler_step_at == "step":
                t.scheduler.step(t.stats.steps)
            t.model.zero_grad()
            t.stats.steps += 1
            tokens += int(batch.ntokens)
            sentences += int(batch.nseqs)
            loss += float(batch_loss)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        return {"updates": int(updates), "tokens": tokens, "sentences": sentences, "seconds": seconds,
                "cpu_seconds": cpu, "loss": loss / max(int(updates), 1)}

    # -- decoding ----------------------------------------------------------------------------
    def setup_decode(self, config: str, checkpoint: str) -> dict[str, Any]:
        from joeynmt.config import load_config, parse_global_args
        from joeynmt.prediction import prepare

        cfg = load_config(Path(config))
        cfg["testing"]["load_model"] = checkpoint
        args = parse_global_args(cfg, rank=0, mode="test")
        model, _train, _dev, test_data = prepare(args, rank=0, mode="test")
        self.model, self.args, self.test_data = model, args, test_data
        return {"params": sum(p.numel() for p in model.parameters()), "sentences": len(test_data)}

    def decode(self, beam_size: int, batch_size: int, beam_alpha: float, output: str) -> dict[str, Any]:
        from joeynmt.prediction import predict

        test_args = self.args.test._replace(beam_size=int(beam_size), batch_size=int(batch_size),
                                            beam_alpha=float(beam_alpha), n_best=1, return_prob="none",
                                            return_attention=False)
        start = time.perf_counter()
        _scores, _refs, hypotheses, _raw, _seq, _att = predict(
            model=self.model, data=self.test_data, device=self.args.device, n_gpu=self.args.n_gpu, rank=0,
            compute_loss=False, normalization="none", num_workers=0, args=test_args, autocast=self.args.autocast)
        seconds = time.perf_counter() - start
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(output).with_suffix(".tmp")
        tmp.write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
        os.replace(tmp, output)
        return {"sentences": len(hypotheses), "seconds": seconds,
                "tokens": sum(len(h.split()) for h in hypotheses)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    opts = ap.parse_args()
    # answers go to the real stdout; anything else printed to stdout (JoeyNMT, tqdm) goes to stderr
    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    import torch

    torch.set_num_threads(opts.threads)
    peer = Peer()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        cmd = request.pop("cmd")
        if cmd == "quit":
            answers.write(json.dumps({"ok": True}) + "\n")
            break
        try:
            answer = getattr(peer, cmd)(**request)
        except Exception as e:  # noqa: BLE001 - reported to the driver, which fails loudly
            traceback.print_exc()
            answer = {"error": f"{type(e).__name__}: {e}"}
        answers.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
