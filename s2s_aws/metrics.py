"""Moved to :mod:`s2s_aws.contract.metrics`; this name stays importable (a re-export)."""
from s2s_aws.contract.metrics import *  # noqa: F401,F403
from s2s_aws.contract.metrics import __all__  # noqa: F401
