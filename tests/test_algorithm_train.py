"""s2s-train end to end from a real /opt/ml tree: it learns, writes a self-contained model, resumes
from its checkpoint, and fails with one clear paragraph for every bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from algo_utils import (TINY_HYPERPARAMETERS, reverse_pairs, run_train, tiny_training_root,  # noqa: E402
                        train_tiny_model, vocabulary, write_ml_tree)
from s2s_aws.contract.metrics import parse_metric_line  # noqa: E402

pytestmark = pytest.mark.slow

#: a short run for the failure and resume cases (no BLEU: fast checkpoints)
QUICK = {**TINY_HYPERPARAMETERS, "optimized_metric": "perplexity", "bleu_sample_size": "0",
         "checkpoint_frequency_num_batches": "10", "max_num_batches": "15"}


def _metrics(stdout: str) -> list[tuple[str, float, int | None, int | None]]:
    return [m for m in map(parse_metric_line, stdout.splitlines()) if m]


def _failure(root: Path) -> str:
    path = root / "output" / "failure"
    assert path.is_file(), "no failure file"
    text = path.read_text()
    assert text.count("\n") == 1 and text.endswith("\n"), "failure must be one paragraph"
    return text


# -- learning -------------------------------------------------------------------------------------
def test_tiny_model_learns_to_reverse_sequences(tmp_path):
    root = tiny_training_root()
    stdout = (root / "stdout.txt").read_text()
    metrics = _metrics(stdout)
    bleu = [v for name, v, _, _ in metrics if name == "validation:bleu"]
    assert bleu and max(bleu) >= 90.0, stdout[-2000:]
    names = {name for name, *_ in metrics}
    assert {"train:perplexity", "train:accuracy", "validation:perplexity", "validation:accuracy"} <= names
    assert "target tokens/s" in stdout
    assert not (root / "output" / "failure").exists()

    from s2s_algorithm.translator import load_translator

    tr = load_translator(train_tiny_model(tmp_path))
    held_out = [src for src, _ in reverse_pairs(40, seed=99)]
    results = tr.translate_ids(held_out, beam_size=3)
    exact = sum(r.ids == src[::-1] for r, src in zip(results, held_out))
    assert exact >= 34, [(s, r.ids) for s, r in zip(held_out, results)][:5]


def test_model_directory_is_self_contained(tmp_path):
    from s2s_aws.contract import vocab as vocab_format
    from s2s_aws.contract.hyperparameters import Hyperparameters

    model_dir = train_tiny_model(tmp_path)
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        ["model.pt", "hyperparameters.json", "vocab.src.json", "vocab.trg.json", "format.json"])
    assert json.loads((model_dir / "format.json").read_text())["format_version"] == 1
    hp = Hyperparameters.from_strings(json.loads((model_dir / "hyperparameters.json").read_text()))
    assert hp.rnn_num_hidden == 64 and hp.batch_size == 32
    assert vocab_format.load_vocab(model_dir / "vocab.trg.json") == vocabulary()
    state = torch.load(model_dir / "model.pt", weights_only=True)
    assert "decoder.output.weight" in state


def test_translator_text_interface_and_attention_matrix(tmp_path):
    from s2s_algorithm.translator import load_translator
    from s2s_aws.contract.inference import TranslationResult as TextTranslation

    tr = load_translator(train_tiny_model(tmp_path), device="cpu")
    # "zz" is unknown (-> <unk>); 12 tokens exceed max_seq_len_source=10: the model reads the first 10,
    # which are the source tokens and the matrix columns (issue 19)
    sentences = ["w1 w2 w3", "w4 zz w5", " ".join(f"w{i}" for i in range(12))]
    out = tr.translate(sentences, beam_size=2, attention=True)
    assert all(isinstance(o, TextTranslation) for o in out)
    assert out[0].target == "w3 w2 w1" and out[0].tokens == ["w3", "w2", "w1"]
    for sentence, o in zip(sentences, out):
        assert o.source_tokens == sentence.split()[:10]
        assert len(o.matrix) == len(o.tokens)
        assert all(len(row) == min(len(sentence.split()), 10) for row in o.matrix)
    assert len(out[2].tokens) <= 10
    plain = tr.translate(sentences)
    assert all(o.matrix is None for o in plain)
    assert tr.translate_ids([[5, 6, 7]], beam_size=1)[0].ids == [7, 6, 5]


# -- stopping rules and precision ------------------------------------------------------------------
FROZEN = {**QUICK, "optimized_metric": "accuracy", "learning_rate": "1e-12", "checkpoint_frequency_num_batches": "3",
          "checkpoint_threshold": "2", "max_num_batches": "60"}


@pytest.mark.parametrize("min_epochs,stop_step", [("0", 9), ("3", 15)])
def test_early_stopping_after_threshold_checkpoints_respecting_min_epochs(tmp_path, min_epochs, stop_step):
    # accuracy cannot move with a 1e-12 learning rate: checkpoints 2 and 3 bring no improvement;
    # 100 pairs make 4 batches per epoch, so 3 epochs end at step 12
    root = write_ml_tree(tmp_path, {**FROZEN, "min_num_epochs": min_epochs}, train=reverse_pairs(100, 1))
    proc = run_train(root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"training finished at step {stop_step} (early stopping)" in proc.stdout, proc.stdout[-1500:]


def test_max_num_epochs_and_bf16_autocast(tmp_path):
    hp = {**QUICK, "max_num_batches": "-1", "max_num_epochs": "2", "mixed_precision": "bf16"}
    root = write_ml_tree(tmp_path, hp, train=reverse_pairs(100, 1))
    proc = run_train(root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "autocast torch.bfloat16" in proc.stdout
    assert "training finished at step 8 (max_num_epochs)" in proc.stdout, proc.stdout[-1500:]
    assert (root / "model" / "model.pt").is_file()


# -- resume -----------------------------------------------------------------------------------------
def test_restart_resumes_from_the_saved_step_and_matches_an_uninterrupted_run(tmp_path):
    hp = {**QUICK, "max_num_batches": "14", "checkpoint_frequency_num_batches": "7"}
    interrupted = write_ml_tree(tmp_path / "a", hp)
    first = run_train(interrupted)
    assert first.returncode == 0, first.stderr[-2000:]
    state = torch.load(interrupted / "checkpoints" / "training_state.pt", weights_only=False)
    assert state["state"]["step"] == 14

    (interrupted / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({**hp, "max_num_batches": "25"}))
    second = run_train(interrupted)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming from checkpoint" in second.stdout and "step 14" in second.stdout
    steps = [s for name, _, s, _ in _metrics(second.stdout) if name.startswith("validation:")]
    assert steps and min(steps) > 14 and max(steps) == 25
    resumed = torch.load(interrupted / "checkpoints" / "training_state.pt", weights_only=False)
    assert resumed["state"]["step"] == 25

    straight = write_ml_tree(tmp_path / "b", {**hp, "max_num_batches": "25"})
    third = run_train(straight)
    assert third.returncode == 0, third.stderr[-2000:]
    reference = torch.load(straight / "checkpoints" / "training_state.pt", weights_only=False)
    assert reference["state"]["batch_in_epoch"] == resumed["state"]["batch_in_epoch"]
    for name, value in reference["model"].items():
        torch.testing.assert_close(resumed["model"][name], value, rtol=1e-5, atol=1e-6)


def test_data_parallel_over_two_cpu_processes(tmp_path):
    # the DistributedDataParallel path (gloo), as on a multi-GPU host, forced on the CPU
    root = write_ml_tree(tmp_path, {**QUICK, "max_num_batches": "12", "checkpoint_frequency_num_batches": "6"})
    proc = run_train(root, extra_env={"S2S_PROCESSES_PER_HOST": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es) per host" in proc.stdout
    assert "rank 0 of 2" in proc.stdout and "rank 1 of 2" in proc.stdout
    state = torch.load(root / "checkpoints" / "training_state.pt", weights_only=False)
    assert state["state"]["step"] == 12
    assert (root / "model" / "model.pt").is_file()


def test_sigterm_saves_the_state_and_a_restart_resumes_there(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    root = write_ml_tree(tmp_path, {**QUICK, "max_num_batches": "100000", "checkpoint_frequency_num_batches": "5"})
    env = {**os.environ, "S2S_ML_ROOT": str(root), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "s2s_algorithm.train"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("checkpoint 2 "):
                proc.send_signal(signal.SIGTERM)
                break
        rest = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(lines) + rest
    saved = torch.load(root / "checkpoints" / "training_state.pt", weights_only=False)["state"]
    assert f"training state saved at step {saved['step']}" in rest
    assert saved["step"] >= 10
    assert (root / "model" / "model.pt").is_file()

    (root / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({**QUICK, "max_num_batches": str(saved["step"] + 3)}))
    again = run_train(root)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"step {saved['step']}," in again.stdout
    assert f"training finished at step {saved['step'] + 3}" in again.stdout


def test_resuming_with_a_different_model_fails_clearly(tmp_path):
    root = write_ml_tree(tmp_path, {**QUICK, "max_num_batches": "3"})
    assert run_train(root).returncode == 0
    (root / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({**QUICK, "max_num_batches": "6", "rnn_num_hidden": "32"}))
    _fails(root, "different model", "rnn_num_hidden=64 there, 32 now", "new checkpoint location")


# -- failures ----------------------------------------------------------------------------------------
def _fails(root: Path, *expected: str) -> str:
    proc = run_train(root, timeout=120)
    assert proc.returncode != 0
    text = _failure(root)
    for part in expected:
        assert part in text, text
    return text


def test_missing_channel_is_named(tmp_path):
    root = write_ml_tree(tmp_path, QUICK, channels=("train", "vocab"))
    _fails(root, "'validation' channel")


def test_missing_vocab_file_is_named(tmp_path):
    root = write_ml_tree(tmp_path, QUICK)
    (root / "input" / "data" / "vocab" / "vocab.trg.json").unlink()
    _fails(root, "vocab.trg.json", "vocab channel")


def test_token_id_outside_the_vocabulary_names_file_and_record(tmp_path):
    pairs = reverse_pairs(20, 1)
    pairs[7] = ([4, 5, 99], [5, 4])
    root = write_ml_tree(tmp_path, QUICK, train=pairs)
    _fails(root, "train.rec", "record 7", "source token id 99", "24 entries")


def test_empty_train_channel(tmp_path):
    root = write_ml_tree(tmp_path, QUICK)
    (root / "input" / "data" / "train" / "train.rec").unlink()
    _fails(root, "train channel", "no files")


def test_unreadable_records_name_file_and_offset(tmp_path):
    root = write_ml_tree(tmp_path, QUICK)
    rec = root / "input" / "data" / "validation" / "val.rec"
    data = rec.read_bytes()
    magic = (0xCED7230A).to_bytes(4, "little")
    second = data.index(magic, 4)
    rec.write_bytes(data[:second] + b"\x00\x01\x02\x03" + data[second + 4:])   # break the 2nd record's magic
    _fails(root, "val.rec", f"offset {second}")


def test_invalid_hyperparameter_names_value_and_allowed(tmp_path):
    root = write_ml_tree(tmp_path, {**QUICK, "rnn_cell_type": "transformer"})
    _fails(root, "rnn_cell_type", "transformer", "lstm")


def test_unexpected_error_still_writes_a_failure(tmp_path):
    root = write_ml_tree(tmp_path, QUICK)
    (root / "checkpoints").write_text("not a folder")
    _fails(root, "Unexpected error", "FileExistsError")
