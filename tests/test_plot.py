"""Attention heat maps (s2s_aws.plot)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from s2s_aws.errors import InputError
from s2s_aws.plot import save_attention_heatmap

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_writes_a_png_with_cjk_tokens_and_no_glyph_warnings(tmp_path):
    src = ["私", "は", "学生", "です", "。"]
    trg = ["i", "am", "a", "student", "."]
    matrix = np.eye(5)[::-1] * 0.8 + 0.04
    out = tmp_path / "sub" / "attention.png"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = save_attention_heatmap(src, trg, matrix, out, title="日本語 → English")
    assert written == out
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 2000
    assert not [w for w in caught if "glyph" in str(w.message).lower()]
    assert [p.name for p in out.parent.iterdir()] == ["attention.png"]  # no temp file left behind


def test_accepts_lists_and_other_formats(tmp_path):
    out = save_attention_heatmap(["a", "b"], ["x"], [[0.25, 0.75]], tmp_path / "a.svg")
    assert b"<svg" in out.read_bytes()[:500]


def test_image_changes_with_the_matrix(tmp_path):
    a = save_attention_heatmap(["a", "b"], ["x", "y"], [[1, 0], [0, 1]], tmp_path / "a.png")
    b = save_attention_heatmap(["a", "b"], ["x", "y"], [[0, 1], [1, 0]], tmp_path / "b.png")
    assert a.read_bytes() != b.read_bytes()


@pytest.mark.parametrize(
    "src, trg, matrix, fragment",
    [
        (["a", "b"], ["x", "y", "z"], np.ones((2, 3)), "expected (3, 2)"),
        (["a", "b"], ["x"], np.ones((1, 3)), "shape (1, 3)"),
        (["a"], ["x"], [1.0], "expected (1, 1)"),
        (["a", "b"], ["x", "y"], [[1, 0], [1]], "rectangular"),
        ([], [], np.zeros((0, 0)), "nothing to plot"),
    ],
)
def test_shape_mismatch_is_a_clear_error(tmp_path, src, trg, matrix, fragment):
    out = tmp_path / "bad.png"
    with pytest.raises(InputError) as e:
        save_attention_heatmap(src, trg, matrix, out)
    assert fragment in str(e.value)
    assert not out.exists()


def test_unknown_image_format_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown image format 'txt'"):
        save_attention_heatmap(["a"], ["x"], [[1.0]], tmp_path / "out.txt")
    assert list(tmp_path.iterdir()) == []
