"""Names and numbers both sides of the wire agree on: channels, file names, special ids.

Everything here is a plain constant (no imports), assigned here and nowhere else; the SDK, the
preprocessing, the local mode and the algorithm container import them.

- Channels: SageMaker mounts channel ``C`` at ``/opt/ml/input/data/C``; the training job has three.
- Preprocessing writes :data:`PREP_FILES` into one folder; ``channels.upload`` puts ``train.rec`` in the
  ``train`` channel, ``val.rec`` in ``validation`` and both vocabularies in ``vocab``.
- Vocabularies: the special symbols hold ids 0-3 (:data:`SPECIALS` in id order); words follow from 4.
- The model directory (``/opt/ml/model``, packed as ``model.tar.gz``) holds :data:`MODEL_FILES`.

Example::

    from s2s_aws.contract import layout
    assert layout.CHANNELS == ("train", "validation", "vocab")
    assert layout.SPECIALS[layout.EOS_ID] == layout.EOS == "</s>"
"""
from __future__ import annotations

__all__ = [
    "TRAIN_CHANNEL", "VALIDATION_CHANNEL", "VOCAB_CHANNEL", "CHANNELS",
    "TRAIN_FILE", "VALIDATION_FILE", "SOURCE_VOCAB_FILE", "TARGET_VOCAB_FILE", "VOCAB_FILES", "PREP_FILES",
    "RECORDIO_CONTENT_TYPE", "VOCAB_CONTENT_TYPE",
    "PAD_ID", "UNK_ID", "BOS_ID", "EOS_ID", "PAD", "UNK", "BOS", "EOS", "SPECIALS",
    "MODEL_WEIGHTS_FILE", "MODEL_HYPERPARAMETERS_FILE", "MODEL_FORMAT_FILE", "MODEL_FILES", "MODEL_ARCHIVE",
    "HYPERPARAMETERS_FILE", "SUBWORD_MODEL_FILE",
]

# -- channels and the files preprocessing writes ---------------------------------------------------
TRAIN_CHANNEL = "train"
VALIDATION_CHANNEL = "validation"
VOCAB_CHANNEL = "vocab"
#: the training job's channels, in the order they are listed
CHANNELS: tuple[str, ...] = (TRAIN_CHANNEL, VALIDATION_CHANNEL, VOCAB_CHANNEL)

TRAIN_FILE = "train.rec"
VALIDATION_FILE = "val.rec"
SOURCE_VOCAB_FILE = "vocab.src.json"
TARGET_VOCAB_FILE = "vocab.trg.json"
#: (source, target) vocabulary file names, in the vocab channel and in the model directory
VOCAB_FILES: tuple[str, str] = (SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE)
#: what ``preprocess`` writes into its output folder
PREP_FILES: tuple[str, ...] = (TRAIN_FILE, VALIDATION_FILE, SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE)

#: the joint sentencepiece model ``preprocess --subwords sentencepiece`` writes beside the vocabularies
SUBWORD_MODEL_FILE = "spm.model"

#: the S3 ContentType of RecordIO-protobuf channel files (SageMaker's name for the format)
RECORDIO_CONTENT_TYPE = "application/x-recordio-protobuf"
#: the S3 ContentType of vocabulary files
VOCAB_CONTENT_TYPE = "application/json"

# -- vocabularies ----------------------------------------------------------------------------------
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
#: the special symbols in id order
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS)

# -- the model directory ---------------------------------------------------------------------------
MODEL_WEIGHTS_FILE = "model.pt"
#: the resolved hyperparameters (string form) in the model directory; also the name SageMaker gives
#: the training job's hyperparameters under ``/opt/ml/input/config``
MODEL_HYPERPARAMETERS_FILE = HYPERPARAMETERS_FILE = "hyperparameters.json"
MODEL_FORMAT_FILE = "format.json"
#: every file of a model directory
MODEL_FILES: tuple[str, ...] = (MODEL_WEIGHTS_FILE, MODEL_HYPERPARAMETERS_FILE, SOURCE_VOCAB_FILE,
                                TARGET_VOCAB_FILE, MODEL_FORMAT_FILE)
#: the archive SageMaker uploads from ``/opt/ml/model`` (the model files at its root)
MODEL_ARCHIVE = "model.tar.gz"
