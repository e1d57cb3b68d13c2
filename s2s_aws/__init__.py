"""s2s-aws: train and host sequence-to-sequence models on Amazon SageMaker.

``import s2s_aws`` stays light: the public names below are loaded on first use, and nothing on this
path imports torch, the CDK or the sagemaker package.

Example::

    import boto3, s2s_aws
    sess = s2s_aws.Session(boto_session=boto3.Session(region_name="us-east-1"), bucket="my-bucket",
                           prefix="seq2seq/demo", role_arn="arn:aws:iam::123456789012:role/Sm")
    channels = sess.upload_channels("prep/")
    job = sess.train(channels, hyperparameters={"rnn_num_hidden": 512}, instance_type="ml.g5.xlarge")
    job.wait(logs=True)
    endpoint = job.deploy(instance_type="ml.m5.xlarge")
    print(endpoint.translate(["can you drive a car ?"], attention=True)[0].target)
    endpoint.delete()
"""
from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .errors import (  # noqa: F401  (light: plain Python)
    AWSOperationError,
    EndpointFailed,
    FormatError,
    HyperparameterError,
    InputError,
    S2SError,
    TrainingJobFailed,
    TransformJobFailed,
    WaitTimeout,
)

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "Session": "s2s_aws.session",
    "TrainingJob": "s2s_aws.training",
    "Endpoint": "s2s_aws.hosting",
    "AutoScaling": "s2s_aws.hosting",
    "blue_green": "s2s_aws.hosting",
    "Channels": "s2s_aws.channels",
    "TrainingConfig": "s2s_aws.training",
    "TranslationResult": "s2s_aws.runtime",
    "Hyperparameters": "s2s_aws.hyperparameters",
    "METRIC_DEFINITIONS": "s2s_aws.metrics",
}

__all__ = [
    "AWSOperationError", "EndpointFailed", "FormatError", "HyperparameterError", "InputError",
    "S2SError", "TrainingJobFailed", "TransformJobFailed", "WaitTimeout", "__version__", *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 's2s_aws' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = getattr(mod, name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from .channels import Channels
    from .hosting import AutoScaling, Endpoint, blue_green
    from .runtime import TranslationResult
    from .training import TrainingConfig
    from .hyperparameters import Hyperparameters
    from .metrics import METRIC_DEFINITIONS
    from .session import Session
    from .training import TrainingJob
