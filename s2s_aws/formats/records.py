"""Moved to :mod:`s2s_aws.contract.records`; this name stays importable (a re-export)."""
from s2s_aws.contract.records import *  # noqa: F401,F403
from s2s_aws.contract.records import __all__  # noqa: F401
