"""The SageMaker ``/opt/ml`` tree, rooted at ``$S2S_ML_ROOT`` when it is set."""
from __future__ import annotations

import os
from pathlib import Path

from s2s_aws.contract.layout import HYPERPARAMETERS_FILE

__all__ = ["MLPaths", "ML_ROOT_ENV"]

#: Environment variable that relocates ``/opt/ml`` (tests, local mode).
ML_ROOT_ENV = "S2S_ML_ROOT"


class MLPaths:
    """Paths of the SageMaker container layout.

    Example::

        paths = MLPaths()                 # $S2S_ML_ROOT or /opt/ml
        paths.data_dir("train")           # /opt/ml/input/data/train
    """

    def __init__(self, root: str | os.PathLike[str] | None = None):
        if root is None:
            root = os.environ.get(ML_ROOT_ENV) or "/opt/ml"
        self.root = Path(root)
        self.config_dir = self.root / "input" / "config"
        self.model_dir = self.root / "model"
        self.checkpoint_dir = self.root / "checkpoints"
        self.output_dir = self.root / "output"
        self.failure_file = self.output_dir / "failure"

    def data_dir(self, channel: str) -> Path:
        """The folder of one input channel (``input/data/<channel>``)."""
        return self.root / "input" / "data" / channel

    @property
    def hyperparameters_file(self) -> Path:
        return self.config_dir / HYPERPARAMETERS_FILE

    @property
    def inputdataconfig_file(self) -> Path:
        return self.config_dir / "inputdataconfig.json"

    @property
    def resourceconfig_file(self) -> Path:
        return self.config_dir / "resourceconfig.json"

    def __repr__(self) -> str:
        return f"MLPaths(root={str(self.root)!r})"
