"""Load on the real ``s2s-serve`` (issue #9): 32 concurrent clients, a bounded number of requests.

Promises: zero failed requests, every answer equal to the sentence translated alone, and memory
flat across the steady phase (RSS after warm-up vs at the end, generous bound: +30 % and +50 MiB).
Latency percentiles are printed, not asserted (no timing assertions in tests); the long run is
``benchmarks/load.py``.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CLIENTS = 32


def _load_driver():
    spec = importlib.util.spec_from_file_location("s2s_bench_load", REPO / "benchmarks" / "load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_32_clients_no_failures_and_flat_memory(tmp_path):
    from algo_utils import train_tiny_model

    load = _load_driver()
    model_dir = Path(train_tiny_model(tmp_path))
    sentences = load.sentences_for(model_dir, 24, seed=3)
    server = load.ServeProcess(model_dir, log_path=tmp_path / "serve.log")
    try:
        server.wait_ready()
        answers = load.reference_answers(server.url, sentences)
        warm = load.run_load(server.url, server.proc.pid, sentences, answers, clients=CLIENTS,
                             requests_per_client=4, seed=5)
        assert warm.failures == 0, warm.errors[:3]
        result = load.run_load(server.url, server.proc.pid, sentences, answers, clients=CLIENTS,
                               requests_per_client=40, seed=6)
    finally:
        code = server.stop()
    summary = result.summary()
    print("\nload:", summary)
    assert result.requests == CLIENTS * 40
    assert result.failures == 0, result.errors[:5]
    assert result.wrong_answers == 0
    assert result.rss_end <= result.rss_start * 1.3 + 50 * 2**20, summary
    assert code == 0, (tmp_path / "serve.log").read_text()[-2000:]
