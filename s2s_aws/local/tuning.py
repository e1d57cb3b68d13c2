"""The local control plane's hyperparameter tuning jobs.

Mixed into :class:`s2s_aws.local.controlplane.ControlPlane`: operations are ``op_<Operation>`` methods
that take the request parameters and return the response dict (or raise ``ApiError``).
"""
from __future__ import annotations


class TuningMixin:
    """Hyperparameter tuning jobs (operations added here)."""

    def _restore_tuning(self) -> None:
        """After a restart of the stack: nothing to bring back yet."""

    def _shutdown_tuning(self) -> None:
        """On shutdown: nothing running yet."""
