"""``s2s-aws quickstart``: the whole journey on this machine, no AWS account, no Docker.

Steps: make (or read) a parallel corpus -> preprocess -> start the embedded AWS in-process ->
upload the three channels with :class:`s2s_aws.Session` -> train through a SageMaker training job
(live logs) -> deploy an endpoint -> translate held-out sentences -> attention heat map -> BLEU on
the held-out set through the endpoint -> delete endpoint, config and model; stop the stack.
"""
from __future__ import annotations

import logging
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .contract.layout import CHANNELS
from .errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["run_quickstart", "QuickstartResult", "HYPERPARAMETERS", "FAST_HYPERPARAMETERS"]

BUCKET = "s2s-quickstart"
ROLE_ARN = "arn:aws:iam::123456789012:role/S2SQuickstartRole"
IMAGE_URI = "local/s2s-seq2seq:latest"

#: a small attention RNN that learns the toy task in under 1,000 updates on a CPU (about 15 s on 2 cores;
#: held-out BLEU 100 with seed 1: 5 epochs gave 77)
HYPERPARAMETERS: dict[str, str] = {
    "rnn_num_hidden": "128", "num_embed_source": "64", "num_embed_target": "64", "batch_size": "64",
    "learning_rate": "0.003", "max_num_epochs": "15", "checkpoint_frequency_num_batches": "200",
    "max_seq_len_source": "24", "max_seq_len_target": "24", "beam_size": "1", "bleu_sample_size": "-1",
    "optimized_metric": "bleu", "seed": "1",
}
#: ``--fast``: fewer, smaller steps, one evaluation at the end (lower quality; used by the tests)
FAST_HYPERPARAMETERS: dict[str, str] = {
    **HYPERPARAMETERS, "rnn_num_hidden": "96", "num_embed_source": "48", "num_embed_target": "48",
    "batch_size": "32", "learning_rate": "0.006", "max_num_epochs": "4",
    "checkpoint_frequency_num_batches": "1000", "bleu_sample_size": "0", "optimized_metric": "perplexity",
}
_CORPUS = {False: dict(num_train=4000, num_dev=300, num_test=200), True: dict(num_train=2000, num_dev=100, num_test=100)}


@dataclass
class QuickstartResult:
    """What a quickstart run did and measured."""

    workdir: str
    training_job: str = ""
    endpoint: str = ""
    bleu: float | None = None
    exact_match: float | None = None
    num_test: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)
    heatmap: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Steps:
    def __init__(self, total: int, out: Callable[[str], None]):
        self.total, self.n, self.out, self.t0 = total, 0, out, time.monotonic()

    def __call__(self, title: str) -> None:
        self.n += 1
        self.out(f"\n[{self.n}/{self.total}] {title}  (t={time.monotonic() - self.t0:.0f}s)")


def _split_user_corpus(source: Path, target: Path, out: Path) -> tuple[Path, Path, Path, Path, Path, Path]:
    """Line-aligned user files -> train/dev/test files (deterministic shuffle; blank pairs dropped)."""
    for p in (source, target):
        if not p.is_file():
            raise InputError(f"corpus file {p} does not exist; pass --source and --target as existing files")
    src = source.read_text("utf-8", errors="replace").splitlines()
    trg = target.read_text("utf-8", errors="replace").splitlines()
    if len(src) != len(trg):
        raise InputError(f"{source} has {len(src)} lines but {target} has {len(trg)}; the files must be "
                         "line-aligned (sentence i of one translates sentence i of the other)")
    pairs = [(s.strip(), t.strip()) for s, t in zip(src, trg) if s.strip() and t.strip()]
    if len(pairs) < 50:
        raise InputError(f"only {len(pairs)} usable sentence pairs in {source} / {target}; the quickstart "
                         "needs at least 50 (a few thousand to learn anything)")
    random.Random(1).shuffle(pairs)
    n_test = min(200, max(10, len(pairs) // 20))
    n_dev = min(500, max(10, len(pairs) // 20))
    splits = {"test": pairs[:n_test], "dev": pairs[n_test:n_test + n_dev], "train": pairs[n_test + n_dev:]}
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, items in splits.items():
        for side, idx in (("src", 0), ("trg", 1)):
            path = out / f"{name}.{side}"
            path.write_text("".join(p[idx] + "\n" for p in items), encoding="utf-8")
            paths[(name, side)] = path
    return (paths[("train", "src")], paths[("train", "trg")], paths[("dev", "src")], paths[("dev", "trg")],
            paths[("test", "src")], paths[("test", "trg")])


def _bleu(hypotheses: list[str], references: list[str]) -> float | None:
    from .contract.metrics import corpus_score

    try:
        return corpus_score(hypotheses, references)[0]
    except ModuleNotFoundError:
        return None


def run_quickstart(workdir: str | Path = "s2s-quickstart", *, source: str | Path | None = None,
                   target: str | Path | None = None, fast: bool = False, region: str = "us-east-1",
                   hyperparameters: dict[str, str] | None = None, out: Callable[[str], None] | None = None,
                   train_command: list[str] | None = None, serve_command: list[str] | None = None,
                   num_examples: int = 5) -> QuickstartResult:
    """Run the quickstart journey in ``workdir``; returns a :class:`QuickstartResult`.

    ``source``/``target`` use your own line-aligned, tokenized corpus instead of the generated one.
    ``hyperparameters`` override the defaults (``fast`` picks the smaller set). ``out`` receives the
    progress lines (default: print to stdout).
    """
    import boto3

    from ._aws import Backoff
    from .local import LocalStack
    from .local.corpus import write_corpus
    from .preprocess import preprocess
    from .session import Session

    say = out or (lambda s: print(s, flush=True))
    started = time.monotonic()
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    result = QuickstartResult(workdir=str(work))
    step = _Steps(8, say)

    # 1. corpus
    if source is not None and target is not None:
        step(f"Splitting your corpus {source} / {target} into train, dev and held-out test")
        tr_s, tr_t, dv_s, dv_t, te_s, te_t = _split_user_corpus(Path(source), Path(target), work / "corpus")
    else:
        sizes = _CORPUS[bool(fast)]
        step(f"Generating an English -> German toy corpus ({sizes['num_train']} training pairs, "
             f"{sizes['num_test']} held-out)")
        files = write_corpus(work / "corpus", seed=1, **sizes)
        tr_s, tr_t, dv_s, dv_t = files.train_source, files.train_target, files.dev_source, files.dev_target
        te_s, te_t = files.test_source, files.test_target
        say(f"  e.g. {tr_s.read_text('utf-8').splitlines()[0]!r} -> {tr_t.read_text('utf-8').splitlines()[0]!r}")
    test_src = te_s.read_text("utf-8").splitlines()
    test_ref = te_t.read_text("utf-8").splitlines()
    result.num_test = len(test_src)

    # 2. preprocess
    step("Preprocessing into RecordIO-protobuf channels")
    prep = work / "prep"
    summary = preprocess(tr_s, tr_t, dv_s, dv_t, output_dir=prep, num_words_source=20000, num_words_target=20000,
                         workers=1)
    for line in summary.format().splitlines():
        say("  " + line)

    # 3. local stack
    step("Starting the embedded AWS (moto + local SageMaker control plane)")
    state = work / "local-state"
    shutil.rmtree(state, ignore_errors=True)
    stack = LocalStack(state, region=region, train_command=train_command, serve_command=serve_command)
    endpoint = None
    try:
        with stack.activated():
            say(f"  listening on {stack.endpoint_url}; state in {state}")
            boto = boto3.session.Session(region_name=region)
            boto.client("s3").create_bucket(Bucket=BUCKET)
            sess = Session(boto, bucket=BUCKET, prefix="quickstart", role_arn=ROLE_ARN, image_uri=IMAGE_URI,
                           backoff=Backoff(initial=1.0, factor=1.2, maximum=3.0))

            # 4. upload
            step(f"Uploading the channels to s3://{BUCKET}/quickstart/")
            channels = sess.upload_channels(prep)
            for name in CHANNELS:
                say(f"  {name:<10} {getattr(channels, name)}")

            # 5. train
            hp = dict(hyperparameters or (FAST_HYPERPARAMETERS if fast else HYPERPARAMETERS))
            step("Training through a SageMaker training job (live log below)")
            job = sess.train(channels, hyperparameters=hp, instance_type="ml.m5.xlarge")
            result.training_job = job.name
            say(f"  training job {job.name}")
            job.wait(logs=True, log_sink=lambda stream, line: say("  | " + line))
            result.metrics = dict(job.metrics())
            if result.metrics:
                say("  final metrics: " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(result.metrics.items())))

            # 6. deploy
            step("Deploying the model to an endpoint")
            endpoint = job.deploy(instance_type="ml.m5.xlarge")
            result.endpoint = endpoint.name
            say(f"  endpoint {endpoint.name} is InService")

            # 7. translate, heat map, BLEU
            step(f"Translating the {len(test_src)} held-out sentences through the endpoint")
            shown = endpoint.translate(test_src[:num_examples], attention=True)
            for src, ref, res in zip(test_src, test_ref, shown):
                mark = "ok" if res.target.split() == ref.split() else "  "
                say(f"  {mark} {src}\n       -> {res.target}\n          (reference: {ref})")
                result.examples.append({"source": src, "translation": res.target, "reference": ref})
            if shown and shown[0].matrix:
                from .plot import save_attention_heatmap
                used = test_src[0].split()[:len(shown[0].matrix[0])]  # columns: the source tokens read
                heat = save_attention_heatmap(used, shown[0].target.split(), shown[0].matrix,
                                              work / "attention.png", title="attention: " + test_src[0])
                result.heatmap = str(heat)
                say(f"  attention heat map of the first sentence: {heat}")
            hyps = [r.target for r in endpoint.translate(test_src)]
            result.exact_match = sum(h.split() == r.split() for h, r in zip(hyps, test_ref)) / max(1, len(hyps))
            result.bleu = _bleu(hyps, test_ref)
            bleu_text = f"BLEU {result.bleu:.1f}" if result.bleu is not None else "BLEU n/a (pip install sacrebleu)"
            say(f"  held-out set: {bleu_text}, exact matches {result.exact_match:.0%} of {len(hyps)} sentences")

            # 8. clean up
            step("Cleaning up: endpoint, endpoint config and model")
            result.deleted = endpoint.delete(wait=True, timeout=120)
            endpoint = None
            say("  deleted " + ", ".join(result.deleted))
    finally:
        if endpoint is not None:
            try:
                endpoint.delete()
            except Exception as e:  # best effort: the stack stops right after and ends its processes
                logger.warning("could not delete endpoint %s: %s", endpoint.name, e)
        stack.stop()
    result.seconds = round(time.monotonic() - started, 1)
    say(f"\nDone in {result.seconds:.0f}s. Files in {work} (corpus/, prep/, attention.png).")
    return result


if __name__ == "__main__":  # pragma: no cover
    run_quickstart(fast="--fast" in sys.argv)
