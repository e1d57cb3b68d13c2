"""Data formats shared by the SDK and the algorithm container.

Submodules (import the one you need; nothing heavy is imported here):

- :mod:`s2s_aws.formats.record_pb2` -- the ``aialgs.data`` Record protobuf messages.
- :mod:`s2s_aws.formats.recordio` -- dmlc/MXNet RecordIO framing (reader, writer).
- :mod:`s2s_aws.formats.records` -- training pairs as Records: encode/decode, bulk helpers.
- :mod:`s2s_aws.formats.vocab` -- vocabulary build/load/save with the contract's rules.

Example::

    from s2s_aws.formats import records, vocab
    v = vocab.build_vocab(vocab.count_tokens(["a b", "b c"]))
    records.write_pairs("train.rec", [(vocab.encode_tokens("a b".split(), v), [4, 5])])
"""
from __future__ import annotations

__all__ = ["record_pb2", "recordio", "records", "vocab"]
