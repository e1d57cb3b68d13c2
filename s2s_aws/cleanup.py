"""Remove what a run left on SageMaker: endpoints, endpoint configs, models; stop running jobs.

Only resources tagged ``s2s-aws:run`` are ever touched. Select them by run id (the tag's value),
by age (``older_than``: created before now minus the age), or both. ``dry_run=True`` lists what
would be removed and changes nothing. S3 data (channels, model artifacts) is left alone.

Example::

    for r in sess.cleanup(run_id=sess.run_id, dry_run=True):
        print(r.kind, r.name)
    sess.cleanup(older_than="7d")
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Sequence

from ._aws import RUN_TAG, aws_error, is_not_found
from .errors import InputError

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger(__name__)

__all__ = ["Resource", "find_resources", "cleanup", "parse_age", "KINDS"]

KINDS = ("endpoint", "endpoint-config", "model", "training-job", "transform-job")
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass
class Resource:
    """One tagged resource and what cleanup does (or would do) to it."""

    kind: str
    name: str
    arn: str
    created: datetime | None
    run_id: str | None
    status: str | None = None
    action: str = "delete"
    done: bool = field(default=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "arn": self.arn, "run_id": self.run_id,
                "created": self.created.isoformat() if self.created else None, "status": self.status,
                "action": self.action, "done": self.done}


def parse_age(age: str | timedelta | float | int) -> timedelta:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"2w"``, seconds, or a timedelta."""
    if isinstance(age, timedelta):
        return age
    if isinstance(age, (int, float)):
        return timedelta(seconds=float(age))
    m = _AGE.match(str(age))
    if not m:
        raise InputError(f"age {age!r} is not understood; use a number with a unit: 30m, 12h, 7d, 2w")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def _paginate(client: Any, op: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every ``key`` item of ``op`` over all pages (botocore's paginator)."""
    return [item for page in client.get_paginator(op).paginate(**kwargs) for item in page.get(key, [])]


def _run_tag(sm: Any, arn: str) -> str | None:
    try:
        tags = _paginate(sm, "list_tags", "Tags", ResourceArn=arn)
    except Exception as e:
        if is_not_found(e):
            return None
        raise
    for t in tags:
        if t["Key"] == RUN_TAG:
            return t["Value"]
    return None


def _as_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def find_resources(session: Session, *, run_id: str | None = None, older_than: Any = None,
                   kinds: Sequence[str] | None = None, now: datetime | None = None) -> list[Resource]:
    """The ``s2s-aws:run``-tagged resources matching ``run_id`` and/or ``older_than``."""
    if run_id is None and older_than is None:
        raise InputError("cleanup needs a run id or an age (--run-id RUN or --older-than 7d); it never "
                         "removes everything")
    kinds = tuple(kinds or KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InputError(f"unknown resource kinds {unknown}; choose from {', '.join(KINDS)}")
    cutoff = (now or datetime.now(timezone.utc)) - parse_age(older_than) if older_than is not None else None
    sm = session.sagemaker
    listings = {
        "endpoint": ("list_endpoints", "Endpoints", "EndpointName", "EndpointArn", "EndpointStatus", {}),
        "endpoint-config": ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", "EndpointConfigArn",
                            None, {}),
        "model": ("list_models", "Models", "ModelName", "ModelArn", None, {}),
        "training-job": ("list_training_jobs", "TrainingJobSummaries", "TrainingJobName", "TrainingJobArn",
                         "TrainingJobStatus", {"StatusEquals": "InProgress"}),
        "transform-job": ("list_transform_jobs", "TransformJobSummaries", "TransformJobName", "TransformJobArn",
                          "TransformJobStatus", {"StatusEquals": "InProgress"}),
    }
    found: list[Resource] = []
    for kind in kinds:
        op, key, name_key, arn_key, status_key, extra = listings[kind]
        try:
            items = _paginate(sm, op, key, **extra)
        except Exception as e:
            raise aws_error(f"listing {kind}s", e) from e
        for item in items:
            created = _as_utc(item.get("CreationTime"))
            if cutoff is not None and created is not None and created > cutoff:
                continue
            if status_key and item.get(status_key) == "Deleting":
                continue  # already on its way out
            tag = _run_tag(sm, item[arn_key])
            if tag is None or (run_id is not None and tag != run_id):
                continue
            action = "stop" if kind.endswith("-job") else "delete"
            found.append(Resource(kind, item[name_key], item[arn_key], created, tag,
                                  item.get(status_key) if status_key else None, action))
    return found


def cleanup(session: Session, *, run_id: str | None = None, older_than: Any = None, dry_run: bool = False,
            kinds: Sequence[str] | None = None) -> list[Resource]:
    """Find (see :func:`find_resources`) and remove: endpoints first, then configs, then models.

    Running training/transform jobs are stopped (jobs cannot be deleted). Returns the resources,
    with ``done`` set on those handled; with ``dry_run`` nothing is changed.
    """
    from .hosting import Endpoint, _delete_quietly

    resources = find_resources(session, run_id=run_id, older_than=older_than, kinds=kinds)
    for r in resources:
        logger.info("%s %s %s (run %s)", "would " + r.action if dry_run else r.action, r.kind, r.name, r.run_id)
    if dry_run:
        return resources
    sm = session.sagemaker
    order = {k: i for i, k in enumerate(("training-job", "transform-job", "endpoint", "endpoint-config", "model"))}
    for r in sorted(resources, key=lambda r: order[r.kind]):
        if r.kind == "endpoint":
            ep = Endpoint(session, r.name)
            try:
                ep.disable_autoscaling()
            except Exception as e:  # keep going: deleting the endpoint matters more
                logger.warning("could not deregister autoscaling of %s: %s", r.name, e)
            r.done = _delete_quietly(sm.delete_endpoint, EndpointName=r.name)
        elif r.kind == "endpoint-config":
            r.done = _delete_quietly(sm.delete_endpoint_config, EndpointConfigName=r.name)
        elif r.kind == "model":
            r.done = _delete_quietly(sm.delete_model, ModelName=r.name)
        elif r.kind == "training-job":
            from .training import TrainingJob

            TrainingJob(session, r.name).stop()
            r.done = True
        elif r.kind == "transform-job":
            from .transform import TransformJob

            TransformJob(session, r.name).stop()
            r.done = True
    return resources
