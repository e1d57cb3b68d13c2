"""The contract between the SDK and the algorithm container: everything both sides must agree on.

It imports nothing of ``s2s_aws`` above :mod:`s2s_aws.errors`, and neither boto3 nor torch (an
import-linter contract in ``pyproject.toml`` checks it). Import the submodule you need; nothing
is imported here:

- :mod:`~s2s_aws.contract.layout` -- channel and file names, special ids, content types of channel files.
- :mod:`~s2s_aws.contract.recordio` -- dmlc/MXNet RecordIO framing (reader, writer).
- :mod:`~s2s_aws.contract.record_pb2` -- the ``aialgs.data`` Record protobuf messages (``record.proto``).
- :mod:`~s2s_aws.contract.records` -- training pairs and id sequences as Records.
- :mod:`~s2s_aws.contract.vocab` -- vocabulary build/load/save with the contract's rules.
- :mod:`~s2s_aws.contract.hyperparameters` -- the one hyperparameter schema.
- :mod:`~s2s_aws.contract.inference` -- the ``/invocations`` wire format, both directions.
- :mod:`~s2s_aws.contract.model_dir` -- the model directory, its format version, ``model.tar.gz``.
- :mod:`~s2s_aws.contract.metrics` -- the metric log lines and the one BLEU/chrF helper.
- :mod:`~s2s_aws.contract._files` -- the one atomic file write.

Example::

    from s2s_aws.contract import layout, records, vocab
    v = vocab.build_vocab(vocab.count_tokens(["a b", "b c"]))
    records.write_pairs(layout.TRAIN_FILE, [(vocab.encode_tokens("a b".split(), v), [4, 5])])
"""
