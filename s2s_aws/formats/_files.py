"""Moved to :mod:`s2s_aws.contract._files`; this name stays importable (a re-export)."""
from s2s_aws.contract._files import *  # noqa: F401,F403
from s2s_aws.contract._files import __all__  # noqa: F401
