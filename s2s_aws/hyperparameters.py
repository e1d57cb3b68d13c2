"""Moved to :mod:`s2s_aws.contract.hyperparameters`; this name stays importable (a re-export)."""
from s2s_aws.contract.hyperparameters import *  # noqa: F401,F403
from s2s_aws.contract.hyperparameters import __all__  # noqa: F401
