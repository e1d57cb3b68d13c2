"""The local control plane's processing jobs.

Mixed into :class:`s2s_aws.local.controlplane.ControlPlane`: operations are ``op_<Operation>`` methods
that take the request parameters and return the response dict (or raise ``ApiError``).
"""
from __future__ import annotations


class ProcessingMixin:
    """Processing jobs (operations added here)."""

    def _restore_processing(self) -> None:
        """After a restart of the stack: nothing to bring back yet."""

    def _shutdown_processing(self) -> None:
        """On shutdown: nothing running yet."""
