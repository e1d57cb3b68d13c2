"""Moved to :mod:`s2s_aws.contract.vocab`; this name stays importable (a re-export)."""
from s2s_aws.contract.vocab import *  # noqa: F401,F403
from s2s_aws.contract.vocab import __all__  # noqa: F401
