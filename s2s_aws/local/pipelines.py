"""The local control plane's SageMaker Pipelines (pipelines, executions, steps) and the model registry (model packages and groups).

Mixed into :class:`s2s_aws.local.controlplane.ControlPlane`: operations are ``op_<Operation>`` methods
that take the request parameters and return the response dict (or raise ``ApiError``).
"""
from __future__ import annotations


class PipelinesMixin:
    """SageMaker Pipelines (pipelines, executions, steps) and the model registry (model packages and groups) (operations added here)."""

    def _restore_pipelines(self) -> None:
        """After a restart of the stack: nothing to bring back yet."""

    def _shutdown_pipelines(self) -> None:
        """On shutdown: nothing running yet."""
