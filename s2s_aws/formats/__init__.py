"""Moved to :mod:`s2s_aws.contract`: ``s2s_aws.formats.{recordio,records,record_pb2,vocab}`` stay
importable as re-exports of ``s2s_aws.contract.{recordio,records,record_pb2,vocab}``."""
__all__ = ["record_pb2", "recordio", "records", "vocab"]
