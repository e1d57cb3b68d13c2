"""Moved to :mod:`s2s_aws.contract.recordio`; this name stays importable (a re-export)."""
from s2s_aws.contract.recordio import *  # noqa: F401,F403
from s2s_aws.contract.recordio import __all__  # noqa: F401
