"""The benchmark helpers of benchmarks/common.py: matched config, parameter counts, JoeyNMT files
and log parsing, the interleaver. No JoeyNMT install, no timing."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import common  # noqa: E402

TINY = common.MatchedModel(embed=16, encoder_total=16, decoder_hidden=16, batch_size=4, max_length=10)


@pytest.mark.parametrize("vocab", [(30, 40), (100, 57)])
def test_our_formula_matches_the_model(vocab):
    src, trg = vocab
    for attention in (16, 24, 40):
        hp = common.our_hyperparameters(attention, TINY)
        assert common.our_param_count(src, trg, hp) == common.our_param_count_formula(src, trg, attention, TINY)


def test_joey_formula_matches_the_documented_enja_count():
    # joeynmt-enja-rnn.yaml (the same architecture) has 7,705,856 parameters with 6,638 / 8,778 types
    assert common.joey_param_count(6638, 8778) == 7_705_856


def test_attention_hidden_is_chosen_to_match_joey():
    src, trg = 6638, 8778
    default = common.our_param_count_formula(src, trg, 256)
    joey = common.joey_param_count(src, trg)
    assert abs(default - joey) / joey > 0.02          # the default would not be matched
    a = common.choose_attention_hidden(src, trg)
    assert a % 8 == 0 and a > 256
    ours = common.our_param_count_formula(src, trg, a)
    assert common.check_param_counts(ours, joey) < 0.002
    for other in (a - 8, a + 8):
        assert abs(common.our_param_count_formula(src, trg, other) - joey) >= abs(ours - joey)


def test_attention_hidden_on_a_tiny_vocab_is_checked_against_the_real_model():
    a = common.choose_attention_hidden(50, 60, TINY, step=1)
    ours = common.our_param_count(50, 60, common.our_hyperparameters(a, TINY))
    common.check_param_counts(ours, common.joey_param_count(50, 60, TINY))


def test_param_count_mismatch_fails_loudly():
    with pytest.raises(common.BenchmarkError, match="differ by"):
        common.check_param_counts(1030, 1000)
    assert common.check_param_counts(1010, 1000) == pytest.approx(0.01)
    with pytest.raises(common.BenchmarkError):
        common.choose_attention_hidden(50, 60, TINY, limit=16, tolerance=0.0001)


def test_our_hyperparameters_are_strings_our_schema_accepts():
    from s2s_aws.contract.hyperparameters import Hyperparameters

    hp = common.our_hyperparameters(624, learning_rate=0.001, bucketing_enabled=True)
    assert all(isinstance(v, str) for v in hp.values())
    parsed = Hyperparameters.from_strings(hp)
    assert (parsed.rnn_num_hidden, parsed.num_embed_source, parsed.rnn_attention_num_hidden) == (256, 256, 624)
    assert parsed.rnn_attention_type == "mlp" and parsed.batch_size == 64 and parsed.bucketing_enabled is True


def test_joey_vocab_file_keeps_word_ids():
    ours = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "the": 4, "。": 5, "cat": 6}
    lines = common.joey_vocab_lines(ours)
    assert lines == ["<pad>", "<unk>", "<s>", "</s>", "the", "。", "cat"]
    joey = common.joey_ids(lines)
    assert set(joey) == set(ours)
    assert all(joey[t] == i for t, i in ours.items() if i >= 4)
    assert (joey["<unk>"], joey["<pad>"]) == (0, 1)


def test_joey_vocab_rejects_gaps_and_spaces():
    with pytest.raises(common.BenchmarkError, match="ids"):
        common.joey_vocab_lines({"<pad>": 0, "a": 2})
    with pytest.raises(common.BenchmarkError, match="one-token-per-line"):
        common.joey_vocab_lines({"<pad>": 0, "a b": 1})


def _prepared(tmp_path: Path) -> common.PreparedData:
    return common.PreparedData(data_dir=tmp_path / "enja", work_dir=tmp_path, ml_root=tmp_path / "ml",
                               vocab_dir=tmp_path / "prep", joey_src_vocab=tmp_path / "src_vocab.txt",
                               joey_trg_vocab=tmp_path / "trg_vocab.txt", src_vocab_size=10,
                               trg_vocab_size=12, max_output_length=42)


def test_rendered_joey_config_is_the_matched_model(tmp_path):
    values = common.joey_config_values(_prepared(tmp_path), tmp_path / "model", name="t", validation_freq=500)
    cfg = yaml.safe_load(common.render_joey_config(values))
    enc, dec = cfg["model"]["encoder"], cfg["model"]["decoder"]
    assert enc["hidden_size"] * 2 == 256 and enc["bidirectional"] is True
    assert enc["embeddings"]["embedding_dim"] == dec["embeddings"]["embedding_dim"] == 256
    assert dec["hidden_size"] == 256 and dec["attention"] == "bahdanau" and dec["rnn_type"] == "lstm"
    assert cfg["training"]["batch_size"] == 64 and cfg["training"]["batch_type"] == "sentence"
    assert cfg["data"]["src"]["max_length"] == cfg["data"]["trg"]["max_length"] == 50
    assert cfg["data"]["src"]["voc_file"] == str(tmp_path / "src_vocab.txt")
    assert cfg["data"]["train"] == str(tmp_path / "enja" / "train")
    assert cfg["testing"]["beam_alpha"] == 1.0 and cfg["testing"]["sacrebleu_cfg"]["tokenize"] == "none"
    assert cfg["training"]["validation_freq"] == 500 and cfg["training"]["logging_freq"] < 500
    assert cfg["training"]["scheduling"] != "plateau"          # broken with torch 2.13


def test_rendering_names_a_missing_value(tmp_path):
    values = common.joey_config_values(_prepared(tmp_path), tmp_path / "model", name="t")
    del values["seed"]
    with pytest.raises(common.BenchmarkError, match=r"\$seed"):
        common.render_joey_config(values)


JOEY_LOG = """\
2026-11-21 01:10:02,001 - INFO - joeynmt.training - EPOCH 1
2026-11-21 01:10:20,118 - INFO - joeynmt.training - Epoch   1, Step:      100, Batch Loss:     5.912345, Batch Acc: 0.091234, Tokens per Sec:     3712, Lr: 0.001000
2026-11-21 01:10:38,554 - INFO - joeynmt.training - Epoch   1, Step:      200, Batch Loss:     5.101112, Batch Acc: 0.151000, Tokens per Sec:     3801, Lr: 0.001000
2026-11-21 01:11:20,015 - INFO - joeynmt.prediction - Evaluation result (greedy): bleu:   3.41, loss:   4.72, ppl: 112.34, acc:   0.19, 0.0156[sec]
2026-11-21 01:12:40,015 - INFO - joeynmt.prediction - Evaluation result (greedy): bleu:  12.05, loss:   3.90, ppl:  49.40, acc:   0.31, 0.0150[sec]
2026-11-21 01:12:41,000 - INFO - joeynmt.training - Interrupt at epoch 2, step 712.
"""


def test_parse_joey_log():
    steps = common.parse_joey_log(JOEY_LOG)
    assert [(s.step, s.tokens_per_sec) for s in steps] == [(100, 3712.0), (200, 3801.0)]
    assert steps[0].loss == pytest.approx(5.912345) and steps[1].accuracy == pytest.approx(0.151)
    vals = common.parse_joey_validations(JOEY_LOG)
    assert [v["ppl"] for v in vals] == [112.34, 49.40] and vals[1]["bleu"] == 12.05
    assert common.parse_joey_log("no progress lines here") == []


def test_quality_summaries_parse_both_logs():
    import quality

    joey = quality._joey_summary(JOEY_LOG)
    assert joey["updates"] == 712 and joey["best_validation_perplexity"] == 49.40
    ours_log = ("step 100 epoch 1 loss 5.1 lr 0.001 target tokens/s 2100\n"
                "#metric validation:perplexity=80.500000 step=500 epoch=1\n"
                "#metric validation:perplexity=40.250000 step=1000 epoch=1\n"
                "stop requested (SIGTERM): training state saved at step 1234; a restart ...\n")
    ours = quality._our_summary(ours_log)
    assert ours["updates"] == 1234 and ours["best_validation_perplexity"] == 40.25


def test_median_and_table():
    assert common.median([3.0, 1.0, 2.0]) == 2.0
    assert common.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    with pytest.raises(common.BenchmarkError):
        common.median([])
    table = common.format_table(["a", "b"], [(1, 2)])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def test_corpus_bleu_signature_uses_no_tokenization():
    score, signature = common.corpus_bleu(["a b c d e"], ["a b c d e"])
    assert score == pytest.approx(100.0)
    assert "tok:none" in signature
    with pytest.raises(common.BenchmarkError):
        common.corpus_bleu(["a"], [])


def _counter(tmp_path: Path, name: str) -> subprocess.Popen:
    # a child that counts in a file every 0.05 s and writes "stopped" on SIGTERM
    code = ("import signal, sys, time\n"
            f"path = {str(tmp_path / name)!r}\n"
            "def stop(*_):\n"
            "    open(path + '.stopped', 'w').close(); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, stop)\n"
            "n = 0\n"
            "while True:\n"
            "    n += 1; open(path, 'w').write(str(n)); time.sleep(0.05)\n")
    return subprocess.Popen([sys.executable, "-c", code])


def test_interleaver_takes_turns_and_stops_each_at_its_budget(tmp_path):
    procs = {"a": _counter(tmp_path, "a"), "b": _counter(tmp_path, "b")}
    inter = common.Interleaver(procs, budget=1.0, slice_s=0.5, stop_signals={"a": signal.SIGTERM, "b": signal.SIGTERM},
                               grace=10)
    try:
        used = inter.run()
    finally:
        inter.kill_all()
    assert set(used) == {"a", "b"}
    assert all(1.0 <= u < 3.0 for u in used.values()), used
    assert (tmp_path / "a.stopped").exists() and (tmp_path / "b.stopped").exists()
    assert all(p.returncode == 0 for p in procs.values())
    assert len(inter.loads) >= 4                      # at least two slices each


def test_peer_worker_reports_a_dead_worker(tmp_path, monkeypatch):
    fake = tmp_path / "fake_worker.py"
    fake.write_text("import sys\nsys.stdin.readline()\nsys.exit(3)\n")
    monkeypatch.setattr(common, "PEER_WORKER", fake)
    worker = common.PeerWorker(Path(sys.executable), tmp_path / "peer.log")
    with pytest.raises(common.BenchmarkError, match="ended during 'setup_train'"):
        worker.call("setup_train", config="x")
    worker.close()


def test_peer_worker_relays_errors(tmp_path, monkeypatch):
    fake = tmp_path / "fake_worker.py"
    fake.write_text("import json, sys\nfor line in sys.stdin:\n"
                    "    req = json.loads(line)\n"
                    "    out = {'ok': True} if req['cmd'] == 'quit' else {'error': 'ValueError: bad ' + req['cmd']}\n"
                    "    print(json.dumps(out), flush=True)\n"
                    "    if req['cmd'] == 'quit': break\n")
    monkeypatch.setattr(common, "PEER_WORKER", fake)
    with common.PeerWorker(Path(sys.executable), tmp_path / "peer.log") as worker:
        with pytest.raises(common.BenchmarkError, match="ValueError: bad train"):
            worker.call("train", updates=3)
    assert worker.proc.returncode == 0


def test_missing_corpus_is_named(tmp_path):
    with pytest.raises(common.BenchmarkError, match="train.en"):
        common.find_data_dir(tmp_path)


def test_peer_venv_without_install_fails_loudly(tmp_path):
    with pytest.raises(common.BenchmarkError, match="no JoeyNMT venv"):
        common.ensure_peer_venv(tmp_path / "nothing", install=False)


def test_cnn_decode_benchmark_compares_identical_translations(tmp_path, capsys):
    """benchmarks/cnn_decode.py on a tiny model: both decoders run, agree, and the model is restored."""
    pytest.importorskip("torch")
    import cnn_decode

    out = tmp_path / "cnn.json"
    assert cnn_decode.main(["--sentences", "6", "--layers", "2", "--hidden", "16", "--vocab", "40",
                            "--max-len", "8", "--repeats", "1", "--threads", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["conditions"]
    assert [r["beam"] for r in rows] == [1, 5]
    assert all(r["incremental_sent_s"] > 0 and r["prefix_sent_s"] > 0 for r in rows)
    assert "identical 6/6" in capsys.readouterr().out


def test_prefix_recompute_is_undone():
    torch = pytest.importorskip("torch")
    import cnn_decode
    from s2s_algorithm.config import ModelConfig
    from s2s_algorithm.model import Seq2Seq

    model = Seq2Seq(ModelConfig(src_vocab_size=20, trg_vocab_size=20, encoder_type="cnn", decoder_type="cnn",
                                cnn_num_hidden=8, num_embed_source=8, num_embed_target=8)).eval()
    enc = model.encode(torch.tensor([[5, 6, 3]]), torch.tensor([3]))
    with cnn_decode.PrefixRecompute(model.decoder):
        assert model.init_state(enc).dtype == torch.long            # the prefix of token ids
    assert model.init_state(enc).steps == 0                          # the incremental state again


def test_run_main_exits_with_the_status_or_fails_loudly(capsys):
    with pytest.raises(SystemExit) as ok:
        common.run_main("x", lambda: 0)
    assert ok.value.code == 0

    def broken() -> int:
        raise common.BenchmarkError("BLEU is 0")

    with pytest.raises(SystemExit) as failed:
        common.run_main("quality", broken)
    assert failed.value.code == 1
    assert "quality: FAILED: BLEU is 0" in capsys.readouterr().err
