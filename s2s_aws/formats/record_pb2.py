"""Moved to :mod:`s2s_aws.contract.record_pb2`; this name stays importable (a re-export)."""
from s2s_aws.contract.record_pb2 import *  # noqa: F401,F403
from s2s_aws.contract.record_pb2 import __all__  # noqa: F401
