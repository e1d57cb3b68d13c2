"""Algorithm image URIs: our own image in the user's ECR (the default) or the AWS built-in seq2seq.

Example::

    from s2s_aws.images import builtin_image_uri, default_image_uri, resolve_image_uri

    builtin_image_uri("eu-west-1")        # '685385470294.dkr.ecr.eu-west-1.amazonaws.com/seq2seq:1'
    default_image_uri("123456789012", "us-east-1")
    # '123456789012.dkr.ecr.us-east-1.amazonaws.com/s2s-aws-seq2seq:latest'
    resolve_image_uri(boto3.Session(), "us-east-1")   # our image; the account comes from STS

The built-in image's per-region accounts are public facts, taken from the SageMaker Python SDK's
image URI configuration (``image_uri_config/seq2seq.json``, version "1"); the ``sagemaker`` package
is not imported here.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from .errors import InputError

__all__ = [
    "BUILTIN_REGISTRIES",
    "BUILTIN_REPOSITORY",
    "BUILTIN_TAG",
    "DEFAULT_REPOSITORY",
    "DEFAULT_TAG",
    "builtin_image_uri",
    "builtin_regions",
    "default_image_uri",
    "dns_suffix",
    "is_builtin_image_uri",
    "resolve_image_uri",
]

logger = logging.getLogger(__name__)

BUILTIN_REPOSITORY = "seq2seq"
BUILTIN_TAG = "1"
DEFAULT_REPOSITORY = "s2s-aws-seq2seq"
DEFAULT_TAG = "latest"

#: region -> AWS account that publishes the built-in ``seq2seq:1`` image there.
BUILTIN_REGISTRIES: dict[str, str] = {
    "af-south-1": "455444449433",
    "ap-east-1": "286214385809",
    "ap-northeast-1": "501404015308",
    "ap-northeast-2": "306986355934",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "991648021394",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "475088953585",
    "ap-southeast-2": "544295431143",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "469771592824",
    "ca-west-1": "190319476487",
    "cn-north-1": "390948362332",
    "cn-northwest-1": "387376663083",
    "eu-central-1": "813361260812",
    "eu-central-2": "680994064768",
    "eu-north-1": "669576153137",
    "eu-south-1": "257386234256",
    "eu-south-2": "104374241257",
    "eu-west-1": "685385470294",
    "eu-west-2": "644912444149",
    "eu-west-3": "749696950732",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "249704162688",
    "sa-east-1": "855470959533",
    "us-east-1": "811284229777",
    "us-east-2": "825641698319",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "226302683700",
    "us-iso-east-1": "490574956308",
    "us-isob-east-1": "765400339828",
    "us-isof-east-1": "108575199400",
    "us-isof-south-1": "124985052026",
    "us-west-1": "632365934929",
    "us-west-2": "433757028032",
}

# region-name prefix -> DNS suffix of the partition (botocore's partitions data); most specific first
_DNS_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("cn-", "amazonaws.com.cn"),
    ("us-isob-", "sc2s.sgov.gov"),
    ("us-isof-", "csp.hci.ic.gov"),
    ("us-iso-", "c2s.ic.gov"),
    ("eu-isoe-", "cloud.adc-e.uk"),
    ("eusc-", "amazonaws.eu"),
)
_REGION_RE = re.compile(r"[a-z]{2,4}(?:-[a-z]+)+-[0-9]+")
_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_REPOSITORY_RE = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HOW_TO_PASS = ("pass image_uri='ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG' "
                "(CLI: --image-uri)")


def _check_region(region: Any) -> str:
    if not isinstance(region, str) or not _REGION_RE.fullmatch(region):
        raise InputError(f"{region!r} is not an AWS region name (such as 'us-east-1'); pass a region "
                         "with --region or boto3.Session(region_name=...)")
    return region


def dns_suffix(region: str) -> str:
    """The DNS suffix of the partition ``region`` belongs to (``amazonaws.com.cn`` in China)."""
    _check_region(region)
    for prefix, suffix in _DNS_SUFFIXES:
        if region.startswith(prefix):
            return suffix
    return "amazonaws.com"


def _registry_host(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.{dns_suffix(region)}"


def builtin_regions() -> list[str]:
    """Regions where AWS publishes the built-in seq2seq image."""
    return sorted(BUILTIN_REGISTRIES)


def builtin_image_uri(region: str) -> str:
    """The AWS built-in seq2seq image (``{account}.dkr.ecr.{region}.{suffix}/seq2seq:1``).

    Raises :class:`InputError` for a region without the built-in image, saying how to pass an
    explicit image URI instead.
    """
    _check_region(region)
    account = BUILTIN_REGISTRIES.get(region)
    if account is None:
        raise InputError(
            f"the AWS built-in seq2seq image is not known in region {region!r} (known regions: "
            f"{', '.join(builtin_regions())}). To use an image anyway, {_HOW_TO_PASS}; or leave "
            "out the built-in option to use the s2s-aws image in your own ECR repository.")
    return f"{_registry_host(account, region)}/{BUILTIN_REPOSITORY}:{BUILTIN_TAG}"


def is_builtin_image_uri(uri: str) -> bool:
    """Whether ``uri`` names the AWS built-in seq2seq image (any region, any tag)."""
    m = re.fullmatch(r"([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.[a-z0-9.-]+/([^:@]+)(?:[:@].*)?", uri or "")
    return bool(m) and m.group(3) == BUILTIN_REPOSITORY and BUILTIN_REGISTRIES.get(m.group(2)) == m.group(1)


def default_image_uri(account: str, region: str, repository: str = DEFAULT_REPOSITORY,
                      tag: str = DEFAULT_TAG) -> str:
    """Our algorithm image in the user's ECR: ``{account}.dkr.ecr.{region}.{suffix}/{repository}:{tag}``."""
    account = str(account)
    if not _ACCOUNT_RE.fullmatch(account):
        raise InputError(f"{account!r} is not an AWS account id (12 digits); pass the account that "
                         f"holds the image repository, or {_HOW_TO_PASS}")
    if not _REPOSITORY_RE.fullmatch(repository) or len(repository) > 256:
        raise InputError(f"{repository!r} is not a valid ECR repository name (lower-case letters, digits, "
                         "'.', '_', '-' and '/' between parts); pass a valid repository name")
    if not _TAG_RE.fullmatch(tag):
        raise InputError(f"{tag!r} is not a valid image tag (letters, digits, '_', '.', '-'; at most 128); "
                         "pass a valid tag")
    return f"{_registry_host(account, region)}/{repository}:{tag}"


def _caller_account(boto_session: Any, region: str) -> str:
    """The account id of the caller, from STS GetCallerIdentity."""
    try:
        sts = boto_session.client("sts", region_name=region)
        return str(sts.get_caller_identity()["Account"])
    except Exception as e:  # botocore ClientError, NoCredentialsError, endpoint errors
        raise InputError(
            f"could not find your AWS account id to build the default image URI ({type(e).__name__}: "
            f"{e}). Pass account='123456789012', or {_HOW_TO_PASS}, or configure AWS credentials.") from e


def resolve_image_uri(boto_session: Any | None, region: str, image_uri: str | None = None,
                      builtin: bool = False, account: str | None = None) -> str:
    """The image a job or model should run.

    Order: an explicit ``image_uri`` wins; ``builtin=True`` gives the AWS built-in image of
    ``region``; otherwise our image in the user's ECR (:func:`default_image_uri`), with ``account``
    taken from STS through ``boto_session`` when not given.
    """
    if image_uri:
        if not isinstance(image_uri, str) or any(c.isspace() for c in image_uri):
            raise InputError(f"{image_uri!r} is not an image URI; {_HOW_TO_PASS}")
        if builtin:
            logger.info("both image_uri and builtin given; using image_uri %s", image_uri)
        return image_uri
    if builtin:
        return builtin_image_uri(region)
    _check_region(region)
    if account is None:
        if boto_session is None:
            raise InputError("no account id and no boto3 session to look it up: pass account='123456789012' "
                             f"or a boto3 session, or {_HOW_TO_PASS}")
        account = _caller_account(boto_session, region)
    uri = default_image_uri(account, region)
    logger.debug("using the s2s-aws image %s", uri)
    return uri
