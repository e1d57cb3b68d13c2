"""Lambda step of the s2s pipeline: register the model, then create or update the endpoint.

Invoked by SageMaker Pipelines with the step's arguments as the event. It

1. creates a model package version in the model package group (image + model.tar.gz, the
   evaluation report as model quality statistics, the BLEU as customer metadata);
2. when the approval status is ``Approved``: creates a model from that package and a new endpoint
   configuration, then ``CreateEndpoint`` (no endpoint of that name yet) or ``UpdateEndpoint``
   (blue/green replacement by SageMaker; traffic moves only when the new fleet is healthy).

It returns at once: the endpoint change continues on SageMaker after the step succeeded (a Lambda
step may run at most 10 minutes; an endpoint can take longer). Only boto3 is needed (Lambda runtime).
Names are restricted to ``ENDPOINT_PREFIX`` so the function's IAM policy can stay scoped.
"""
from __future__ import annotations

import logging
import os
import re
import time

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

CONTENT_TYPES = ["application/json", "application/x-recordio-protobuf", "application/jsonlines"]
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def _client(sagemaker=None):
    return sagemaker or boto3.client("sagemaker")


def _require(event: dict, key: str) -> str:
    value = event.get(key)
    if value in (None, ""):
        raise ValueError(f"the pipeline step passed no {key!r}; check the RegisterAndDeploy step arguments")
    return str(value)


def _resource_name(endpoint_name: str, suffix: str) -> str:
    # model / endpoint-config names: <endpoint>-<suffix>, at most 63 characters
    return f"{endpoint_name[: 62 - len(suffix)]}-{suffix}"


def handler(event: dict, context: object = None, sagemaker=None) -> dict:
    """Lambda entry point. ``sagemaker`` lets tests inject a stubbed client."""
    sm = _client(sagemaker)
    prefix = os.environ.get("ENDPOINT_PREFIX", "")
    endpoint_name = _require(event, "endpoint_name")
    if not _NAME.match(endpoint_name) or not endpoint_name.startswith(prefix):
        raise ValueError(f"endpoint name {endpoint_name!r} must match {_NAME.pattern} and start with "
                         f"{prefix!r}; pass another EndpointName parameter")
    group = _require(event, "model_package_group_name")
    approval = event.get("approval_status") or "PendingManualApproval"
    bleu = event.get("bleu")
    package = sm.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=f"s2s model from training job {event.get('training_job_name', '?')}, BLEU {bleu}",
        InferenceSpecification={
            "Containers": [{"Image": _require(event, "image_uri"), "ModelDataUrl": _require(event, "model_data_url")}],
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": CONTENT_TYPES,
        },
        ModelMetrics={"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": _require(event, "evaluation_s3_uri")}}},
        CustomerMetadataProperties={"bleu": str(bleu), "training_job_name": str(event.get("training_job_name", ""))},
        ModelApprovalStatus=approval,
    )
    package_arn = package["ModelPackageArn"]
    logger.info("registered %s (%s)", package_arn, approval)
    result = {"model_package_arn": package_arn, "endpoint_name": endpoint_name, "endpoint_action": "none"}
    if approval != "Approved":
        logger.info("approval status %s: endpoint %s left as it is", approval, endpoint_name)
        return result

    suffix = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    model_name = _resource_name(endpoint_name, suffix)
    sm.create_model(
        ModelName=model_name,
        ExecutionRoleArn=_require(event, "execution_role_arn"),
        Containers=[{"ModelPackageName": package_arn}],
        EnableNetworkIsolation=True,   # the server needs no network; SageMaker fetches the model
    )
    config_args = {}
    if os.environ.get("KMS_KEY_ARN"):  # the project key encrypts the endpoint's storage volumes
        config_args["KmsKeyId"] = os.environ["KMS_KEY_ARN"]
    sm.create_endpoint_config(
        EndpointConfigName=model_name,
        ProductionVariants=[{
            "VariantName": "AllTraffic",
            "ModelName": model_name,
            "InstanceType": _require(event, "instance_type"),
            "InitialInstanceCount": int(event.get("instance_count") or 1),
        }],
        **config_args,
    )
    try:
        sm.describe_endpoint(EndpointName=endpoint_name)
        exists = True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ValidationException":
            raise
        exists = False
    if exists:
        sm.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=model_name)
        result["endpoint_action"] = "updated"
    else:
        sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=model_name)
        result["endpoint_action"] = "created"
    logger.info("endpoint %s %s with config %s", endpoint_name, result["endpoint_action"], model_name)
    return result
