"""The PyTorch seq2seq algorithm behind the s2s-aws container.

A drop-in for the SageMaker built-in ``seq2seq`` algorithm (see ``CONTRACT.md``): the training
program (``s2s-train``), the model, batched greedy/beam decoding and the :class:`Translator` used by
the inference server and the evaluation program.

Modules, one per concept:

- :mod:`.paths` -- the ``/opt/ml`` tree (``$S2S_ML_ROOT``)
- :mod:`.config` -- the model configuration derived from the hyperparameters
- :mod:`.attention`, :mod:`.encoder`, :mod:`.decoder`, :mod:`.cnn`, :mod:`.model` -- the network
- :mod:`.data` -- channels, validation of ids, length bucketing, batches
- :mod:`.optim` -- optimizers and learning-rate schedulers
- :mod:`.checkpoint` -- resumable checkpoints and the self-contained model directory
- :mod:`.decode` -- batched greedy and beam search
- :mod:`.translator` -- :func:`load_translator`, :class:`Translator`
- :mod:`.distributed` -- one process per GPU, several hosts
- :mod:`.train` -- the training program
"""
from __future__ import annotations

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__: list[str] = []
