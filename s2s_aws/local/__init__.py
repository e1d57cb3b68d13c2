"""Local mode: an embedded AWS (moto + a SageMaker control plane that really runs the jobs).

``from s2s_aws.local import LocalStack`` is light; moto and werkzeug load when a stack starts.
"""
from __future__ import annotations

from .stack import LocalStack

__all__ = ["LocalStack"]
