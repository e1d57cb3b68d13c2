"""Attention heat maps: which source tokens each target token looked at.

matplotlib is imported inside the function (``import s2s_aws`` stays light) and used through its
object API with the Agg canvas, so no global backend is switched and no display is needed.

Example::

    from s2s_aws.plot import save_attention_heatmap
    save_attention_heatmap(["how", "are", "you", "?"], ["お元気", "です", "か", "?"], matrix,
                           "attention.png", title="attention")
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

from .contract._files import atomic_write
from .errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["save_attention_heatmap"]

# fonts that cover CJK scripts, used when installed (matplotlib falls back per glyph)
_CJK_FONTS = (
    "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans JP", "Source Han Sans JP", "IPAexGothic", "IPAGothic",
    "TakaoGothic", "VL Gothic", "WenQuanYi Zen Hei", "Droid Sans Fallback", "Hiragino Sans", "Yu Gothic",
    "MS Gothic", "SimHei", "Microsoft YaHei", "AppleGothic", "Malgun Gothic",
)


def _font_families() -> list[str]:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans"] + [name for name in _CJK_FONTS if name in installed]


def _check(source_tokens: Sequence[str], target_tokens: Sequence[str], matrix: object):
    import numpy as np

    try:
        m = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as e:
        raise InputError(f"attention matrix is not a rectangular table of numbers ({e}); "
                         "pass one row per target token and one column per source token") from None
    if len(target_tokens) == 0 or len(source_tokens) == 0:
        raise InputError(f"nothing to plot: {len(target_tokens)} target and {len(source_tokens)} source tokens; "
                         "an attention heat map needs at least one of each")
    expected = (len(target_tokens), len(source_tokens))
    if m.ndim != 2 or m.shape != expected:
        raise InputError(f"attention matrix has shape {m.shape}, expected {expected} "
                         f"({len(target_tokens)} target tokens as rows x {len(source_tokens)} source tokens "
                         "as columns); pass the matrix that belongs to these tokens")
    return m


def save_attention_heatmap(source_tokens: Sequence[str], target_tokens: Sequence[str], matrix: object,
                           path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Write a labelled heat map of ``matrix`` (rows: target tokens, columns: source tokens) to ``path``.

    The image format follows the file suffix (``.png``, ``.svg``, ``.pdf``; PNG when there is none).
    Source tokens label the x axis, target tokens the y axis, with a colour bar and a title. Glyphs
    missing from the installed fonts (e.g. CJK without a CJK font) render as boxes, silently. The file
    appears complete or not at all. Raises :class:`~s2s_aws.errors.InputError` when the matrix does
    not match the tokens. Returns the path written.
    """
    m = _check(source_tokens, target_tokens, matrix)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(path)
    fmt = out.suffix.lstrip(".").lower() or "png"
    supported = FigureCanvasAgg.filetypes if hasattr(FigureCanvasAgg, "filetypes") else {}
    if supported and fmt not in supported:
        raise InputError(f"cannot write a heat map as {out.name}: unknown image format {fmt!r}; "
                         f"use one of .{', .'.join(sorted(supported))}")
    n_rows, n_cols = m.shape
    width = min(4.0 + 0.45 * n_cols, 40.0)
    height = min(3.0 + 0.4 * n_rows, 40.0)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*[Gg]lyph .* missing from .*")
        warnings.filterwarnings("ignore", message=r".*[Ff]ont family .* not found.*")
        mpl_fonts = logging.getLogger("matplotlib.font_manager")
        old_level = mpl_fonts.level
        mpl_fonts.setLevel(logging.ERROR)  # "findfont: ..." notices for fonts not installed
        try:
            fig = Figure(figsize=(width, height), dpi=100)
            FigureCanvasAgg(fig)
            ax = fig.add_subplot(1, 1, 1)
            families = _font_families()
            image = ax.imshow(m, cmap="viridis", aspect="auto", interpolation="nearest", vmin=0.0,
                              vmax=max(1.0, float(m.max())) if m.size else 1.0)
            ax.set_xticks(range(n_cols))
            ax.set_xticklabels(list(source_tokens), rotation=60, ha="right", fontfamily=families)
            ax.set_yticks(range(n_rows))
            ax.set_yticklabels(list(target_tokens), fontfamily=families)
            ax.set_xlabel("source tokens")
            ax.set_ylabel("target tokens")
            ax.set_title(title or "attention", fontfamily=families)
            fig.colorbar(image, ax=ax, label="attention weight")
            fig.tight_layout()
            with atomic_write(out, mkdir=True) as f:
                fig.savefig(f, format=fmt)
        finally:
            mpl_fonts.setLevel(old_level)
    logger.debug("wrote attention heat map %s (%d x %d)", out, n_rows, n_cols)
    return out
