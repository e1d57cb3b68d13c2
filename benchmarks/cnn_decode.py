"""CNN decoder: incremental decoding vs recomputing the prefix at every step (what it did before).

Our ConvS2S decoder keeps each layer's last ``kernel - 1`` inputs between steps
(``s2s_algorithm.cnn.ConvState``), so a step costs the same at every position. The baseline here is
the previous step, which ran the whole decoder over the prefix and kept the last position
(``ConvDecoder.forward``, quadratic in the output length). Same model, same sources, same search;
the script fails if the two give different translations. JoeyNMT has no convolutional model, so
the peer is our own earlier algorithm.

Usage::

    .venv/bin/python benchmarks/cnn_decode.py                   # 4+4 layers of 256, 8,000 words
    .venv/bin/python benchmarks/cnn_decode.py --sentences 256 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def _prefix_step(decoder, prev, state, enc):
    """The former step: the decoder over the whole prefix (the state is the prefix of token ids)."""
    import torch

    prefix = torch.cat([state, prev.unsqueeze(1)], dim=1)
    logits, weights = decoder.forward(enc, prefix)
    return logits[:, -1], prefix, weights[:, -1]


class PrefixRecompute:
    """Swap the CNN decoder's incremental step for the prefix-recomputing one, and back."""

    def __init__(self, decoder):
        self.decoder = decoder

    def __enter__(self):
        import torch

        d = self.decoder
        d.init_state = lambda enc: torch.zeros(enc.memory.shape[0], 0, dtype=torch.long, device=enc.memory.device)
        d.reorder_state = lambda state, index: state.index_select(0, index)
        d.step = lambda prev, state, enc: _prefix_step(d, prev, state, enc)
        return self

    def __exit__(self, *exc):
        for name in ("init_state", "reorder_state", "step"):
            del self.decoder.__dict__[name]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--max-len", type=int, default=60, help="max_seq_len_target (bounds the outputs)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=common.THREADS)
    ap.add_argument("--json", help="also write the results here")
    opts = ap.parse_args(argv)

    import torch

    from s2s_algorithm.config import ModelConfig
    from s2s_algorithm.decode import translate_ids
    from s2s_algorithm.model import Seq2Seq

    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(src_vocab_size=opts.vocab, trg_vocab_size=opts.vocab, encoder_type="cnn", decoder_type="cnn",
                      num_layers_encoder=opts.layers, num_layers_decoder=opts.layers, cnn_num_hidden=opts.hidden,
                      num_embed_source=opts.hidden, num_embed_target=opts.hidden,
                      max_seq_len_source=opts.max_len, max_seq_len_target=opts.max_len)
    model = Seq2Seq(cfg).eval()   # untrained: outputs run long, which is where the step cost shows
    gen = torch.Generator().manual_seed(1)
    lengths = torch.randint(5, 20, (opts.sentences,), generator=gen).tolist()
    sources = [torch.randint(4, opts.vocab, (n,), generator=gen).tolist() for n in lengths]
    machine = common.machine_summary()
    print(f"machine: {json.dumps(machine)}", flush=True)
    print(f"model: CNN {opts.layers}+{opts.layers} layers of {opts.hidden}, kernel {cfg.cnn_kernel_width_decoder}, "
          f"{opts.vocab} words, {model.num_parameters():,} parameters; {opts.sentences} sentences", flush=True)

    def run(beam: int, baseline: bool) -> tuple[float, list]:
        def decode():
            return translate_ids(model, sources, beam_size=beam, max_seq_len_target=opts.max_len, batch_size=64)
        if baseline:
            with PrefixRecompute(model.decoder):
                decode_start = time.perf_counter()
                out = decode()
        else:
            decode_start = time.perf_counter()
            out = decode()
        return time.perf_counter() - decode_start, out

    results = {"machine": machine, "conditions": []}
    for beam in (1, 5):
        run(beam, False), run(beam, True)                                  # warm-up
        ours, base, outputs = [], [], {}
        for _ in range(opts.repeats):                                      # alternate
            for baseline, times in ((False, ours), (True, base)):
                seconds, out = run(beam, baseline)
                times.append(seconds)
                outputs[baseline] = [h.ids for h in out]
        same = sum(a == b for a, b in zip(outputs[False], outputs[True]))
        if same != len(sources):
            raise common.BenchmarkError(f"beam {beam}: incremental and prefix decoding differ on "
                                        f"{len(sources) - same} of {len(sources)} sentences")
        mean_len = sum(len(ids) for ids in outputs[False]) / len(sources)
        row = {"beam": beam, "incremental_sent_s": len(sources) / common.median(ours),
               "prefix_sent_s": len(sources) / common.median(base), "mean_output_tokens": mean_len}
        row["ratio"] = row["incremental_sent_s"] / row["prefix_sent_s"]
        results["conditions"].append(row)
        print(f"beam {beam}: incremental {row['incremental_sent_s']:.1f} sent/s, prefix recompute "
              f"{row['prefix_sent_s']:.1f} sent/s ({row['ratio']:.2f}x); identical {same}/{len(sources)}; "
              f"mean output {mean_len:.1f} tokens", flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    common.run_main("cnn_decode", main)
