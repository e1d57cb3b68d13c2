"""The local stack's state folder: resource records, job folders and snapshots of S3 and logs.

Layout under ``state_dir``::

    resources/<kind>/<name>.json   one SageMaker resource (its Describe shape), rewritten atomically
    jobs/<kind>/<name>/            per-job working folders (the /opt/ml-style tree, logs)
    endpoints/<name>/<generation>/ unpacked models of running endpoints
    s3/index.json + s3/blobs/      the S3 snapshot (content-addressed object bodies)
    logs.json, logs-times.json     the CloudWatch Logs snapshot (events; group and stream creation times)
    iam.json                       IAM roles (trust policy, inline and attached policies) and local policies
    lock                           held (flock) by the stack that uses the folder; its pid

Moto keeps S3 and CloudWatch Logs in memory, so the stack saves them here and restores them on
start: S3 before each write is acknowledged (write-through, see ``server.PersistingApp``; objects
whose ETag did not change are not read again), IAM after each change, logs about once a second and
on stop. SageMaker resources are written through on every change.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Iterable

from ..contract._files import commit_temp, create_temp_beside, discard_temp, write_bytes_atomic

logger = logging.getLogger(__name__)

KINDS = ("training-job", "model", "endpoint-config", "endpoint", "transform-job")

_SAFE = re.compile(r"[A-Za-z0-9-]{1,63}")  # with fullmatch: "$" would let a trailing newline through


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through the contract's one atomic write (temp beside, fsync, rename)."""
    write_bytes_atomic(path, data, mkdir=True)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8"))


class Registry:
    """Thread-safe in-memory SageMaker resources, written through to ``resources/<kind>/<name>.json``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.lock = threading.RLock()
        self._records: dict[str, dict[str, dict]] = {k: {} for k in KINDS}

    def _path(self, kind: str, name: str) -> Path:
        if not _SAFE.fullmatch(name):  # names are validated by the API; this guards the file system
            raise ValueError(f"unsafe resource name {name!r}")
        return self.root / "resources" / kind / f"{name}.json"

    def load(self) -> None:
        """Read every record from disk (called once at start)."""
        with self.lock:
            for kind in KINDS:
                folder = self.root / "resources" / kind
                if not folder.is_dir():
                    continue
                for path in sorted(folder.glob("*.json")):
                    try:
                        self._records[kind][path.stem] = json.loads(path.read_text("utf-8"))
                    except (OSError, ValueError) as e:
                        logger.warning("skipping unreadable state file %s: %s", path, e)

    def get(self, kind: str, name: str) -> dict | None:
        with self.lock:
            rec = self._records[kind].get(name)
            return copy.deepcopy(rec) if rec is not None else None

    def exists(self, kind: str, name: str) -> bool:
        with self.lock:
            return name in self._records[kind]

    def put(self, kind: str, name: str, record: dict) -> None:
        with self.lock:
            self._records[kind][name] = copy.deepcopy(record)
            atomic_write_json(self._path(kind, name), record)

    def update(self, kind: str, name: str, changes: dict) -> dict | None:
        """Merge ``changes`` into a record (keys with value None are removed); None if it is gone."""
        with self.lock:
            rec = self._records[kind].get(name)
            if rec is None:
                return None
            for k, v in changes.items():
                if v is None:
                    rec.pop(k, None)
                else:
                    rec[k] = copy.deepcopy(v)
            atomic_write_json(self._path(kind, name), rec)
            return copy.deepcopy(rec)

    def delete(self, kind: str, name: str) -> None:
        with self.lock:
            self._records[kind].pop(name, None)
            try:
                self._path(kind, name).unlink()
            except FileNotFoundError:
                pass

    def all(self, kind: str) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(r) for r in self._records[kind].values()]

    def find_arn(self, arn: str) -> tuple[str, str] | None:
        """The (kind, name) of the resource with this ARN, or None."""
        with self.lock:
            for kind, recs in self._records.items():
                for name, rec in recs.items():
                    if rec.get("_Arn") == arn:
                        return kind, name
            return None


# ---------------------------------------------------------------- S3 and logs snapshots

def snapshot_s3(s3: Any, root: Path) -> int:
    """Dump every bucket and object of the (moto) S3 behind ``s3`` into ``root/s3``; returns objects."""
    base = root / "s3"
    blobs = base / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    try:  # objects whose ETag did not change since the last snapshot are not read again
        previous = json.loads((base / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    index: dict[str, dict] = {}
    count = 0
    for bucket in s3.list_buckets().get("Buckets", []):
        bname = bucket["Name"]
        objects: dict[str, dict] = {}
        known = (previous.get(bname) or {}).get("objects") or {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bname):
            for obj in page.get("Contents", []):
                prev = known.get(obj["Key"])
                modified = _epoch(obj.get("LastModified"))
                if prev and prev.get("ETag") == obj.get("ETag") and (blobs / prev["sha256"]).exists():
                    objects[obj["Key"]] = {**prev, "LastModified": modified}
                    count += 1
                    continue
                resp = s3.get_object(Bucket=bname, Key=obj["Key"])
                digest = hashlib.sha256()
                fd, tmp = create_temp_beside(blobs / "blob")
                f = os.fdopen(fd, "wb")
                try:
                    for chunk in iter(lambda: resp["Body"].read(1 << 20), b""):
                        digest.update(chunk)
                        f.write(chunk)
                    sha = digest.hexdigest()
                    if (blobs / sha).exists():
                        discard_temp(f, tmp)
                    else:
                        commit_temp(f, tmp, blobs / sha)
                except BaseException:
                    discard_temp(f, tmp)
                    raise
                objects[obj["Key"]] = {"sha256": sha, "ContentType": resp.get("ContentType"),
                                       "Metadata": resp.get("Metadata") or {}, "ETag": obj.get("ETag"),
                                       "LastModified": modified}
                count += 1
        index[bname] = {"objects": objects, "CreationDate": _epoch(bucket.get("CreationDate"))}
    atomic_write_json(base / "index.json", index)
    used = {o["sha256"] for b in index.values() for o in b["objects"].values()}
    for blob in blobs.iterdir():
        if blob.name not in used:
            blob.unlink(missing_ok=True)
    return count


def restore_s3(s3: Any, root: Path) -> int:
    """Upload the S3 snapshot in ``root/s3`` (if any) back into the (moto) S3; returns objects."""
    index_path = root / "s3" / "index.json"
    if not index_path.exists():
        return 0
    index = json.loads(index_path.read_text("utf-8"))
    count = 0
    for bname, bucket in index.items():
        try:
            s3.create_bucket(Bucket=bname)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        for key, meta in bucket["objects"].items():
            extra: dict[str, Any] = {"Metadata": meta.get("Metadata") or {}}
            if meta.get("ContentType"):
                extra["ContentType"] = meta["ContentType"]
            with open(root / "s3" / "blobs" / meta["sha256"], "rb") as f:
                s3.put_object(Bucket=bname, Key=key, Body=f, **extra)
            count += 1
    return count


def snapshot_logs(logs: Any, root: Path) -> int:
    """Dump every CloudWatch Logs group, stream and event into ``root/logs.json`` (and the groups' and
    streams' creation times into ``root/logs-times.json``); returns events."""
    dump: dict[str, dict[str, list]] = {}
    times: dict[str, dict[str, Any]] = {}
    count = 0
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page.get("logGroups", []):
            gname = group["logGroupName"]
            dump[gname] = {}
            times[gname] = {"creationTime": group.get("creationTime"), "streams": {}}
            for spage in logs.get_paginator("describe_log_streams").paginate(logGroupName=gname):
                for stream in spage.get("logStreams", []):
                    events = list(iter_log_events(logs, gname, stream["logStreamName"]))
                    dump[gname][stream["logStreamName"]] = [[e["timestamp"], e["message"]] for e in events]
                    times[gname]["streams"][stream["logStreamName"]] = stream.get("creationTime")
                    count += len(events)
    atomic_write_json(root / "logs.json", dump)
    atomic_write_json(root / "logs-times.json", times)
    return count


def iter_log_events(logs: Any, group: str, stream: str) -> Iterable[dict]:
    """Every event of one stream, oldest first."""
    token = None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        resp = logs.get_log_events(**kwargs)
        yield from resp.get("events", [])
        if not resp.get("events") or resp.get("nextForwardToken") in (None, token):
            return
        token = resp["nextForwardToken"]


def restore_logs(logs: Any, root: Path) -> int:
    """Put the snapshot in ``root/logs.json`` back into CloudWatch Logs (streams that are empty)."""
    path = root / "logs.json"
    if not path.exists():
        return 0
    dump = json.loads(path.read_text("utf-8"))
    count = 0
    for gname, streams in dump.items():
        try:
            logs.create_log_group(logGroupName=gname)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        for sname, events in streams.items():
            try:
                logs.create_log_stream(logGroupName=gname, logStreamName=sname)
            except logs.exceptions.ResourceAlreadyExistsException:
                continue  # already there (same process): do not duplicate its events
            events = sorted(events, key=lambda e: e[0])
            for i in range(0, len(events), 1000):
                batch = [{"timestamp": int(t), "message": m} for t, m in events[i:i + 1000]]
                logs.put_log_events(logGroupName=gname, logStreamName=sname, logEvents=batch)
                count += len(batch)
    return count


# ---------------------------------------------------------------- timestamps across a restart

def _epoch(value: Any) -> float | None:
    """A boto3 timestamp (datetime) as seconds since the epoch, or None."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


def restore_timestamps(root: Path, region: str, account_id: str) -> int:
    """Give restored S3 objects and buckets their ``LastModified`` / ``CreationDate`` and restored log
    groups and streams their ``creationTime`` from the snapshots (a restore writes them anew, which
    would stamp them with the restart time). Works on moto's in-process backends; returns how many
    timestamps it set (0, with a warning, when moto's internals are not what this expects)."""
    import datetime

    def naive_utc(epoch: float) -> datetime.datetime:  # what moto keeps (its utcnow() is naive UTC)
        return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).replace(tzinfo=None)

    count = 0
    try:
        from moto.logs.models import logs_backends
        from moto.s3.models import s3_backends
        index_path = root / "s3" / "index.json"
        if index_path.exists():
            backend = s3_backends[account_id]["aws"]
            for bname, bucket in json.loads(index_path.read_text("utf-8")).items():
                fake_bucket = backend.buckets.get(bname)
                if fake_bucket is None:
                    continue
                if bucket.get("CreationDate") is not None:
                    fake_bucket.creation_date = datetime.datetime.fromtimestamp(bucket["CreationDate"],
                                                                                tz=datetime.timezone.utc)
                    count += 1
                for key, meta in bucket["objects"].items():
                    fake_key = fake_bucket.keys.get(key)
                    if fake_key is not None and meta.get("LastModified") is not None:
                        fake_key.last_modified = naive_utc(meta["LastModified"])
                        count += 1
        times_path = root / "logs-times.json"
        if times_path.exists():
            backend = logs_backends[account_id][region]
            for gname, group in json.loads(times_path.read_text("utf-8")).items():
                fake_group = backend.groups.get(gname)
                if fake_group is None:
                    continue
                if group.get("creationTime") is not None:
                    fake_group.creation_time = naive_utc(group["creationTime"] / 1000.0)
                    count += 1
                for sname, created in (group.get("streams") or {}).items():
                    fake_stream = fake_group.streams.get(sname)
                    if fake_stream is not None and created is not None:
                        fake_stream.creation_time = naive_utc(created / 1000.0)
                        count += 1
    except (ImportError, AttributeError, KeyError, TypeError, ValueError) as e:
        logger.warning("could not restore S3 and CloudWatch Logs timestamps from %s (%s: %s); they show the "
                       "time of the restart", root, type(e).__name__, e)
    return count


# ---------------------------------------------------------------- IAM roles and policies

def snapshot_iam(iam: Any, root: Path) -> int:
    """Save the local IAM's roles (trust policy, inline and attached policies) and customer-managed
    policies to ``root/iam.json``; returns the number of roles and policies saved."""
    policies = []
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for pol in page.get("Policies", []):
            doc = iam.get_policy_version(PolicyArn=pol["Arn"], VersionId=pol["DefaultVersionId"])
            policies.append({"PolicyName": pol["PolicyName"], "Path": pol.get("Path", "/"),
                             "Description": pol.get("Description") or "",
                             "PolicyDocument": _json_doc(doc["PolicyVersion"]["Document"])})
    roles = []
    for page in iam.get_paginator("list_roles").paginate():
        for role in page.get("Roles", []):
            name = role["RoleName"]
            inline = {}
            for ipage in iam.get_paginator("list_role_policies").paginate(RoleName=name):
                for pname in ipage.get("PolicyNames", []):
                    inline[pname] = _json_doc(iam.get_role_policy(RoleName=name, PolicyName=pname)["PolicyDocument"])
            attached = [a["PolicyArn"] for apage in iam.get_paginator("list_attached_role_policies").paginate(
                RoleName=name) for a in apage.get("AttachedPolicies", [])]
            roles.append({"RoleName": name, "Path": role.get("Path", "/"), "Description": role.get("Description") or "",
                          "CreateDate": _epoch(role.get("CreateDate")),
                          "MaxSessionDuration": role.get("MaxSessionDuration", 3600),
                          "AssumeRolePolicyDocument": _json_doc(role.get("AssumeRolePolicyDocument") or {}),
                          "InlinePolicies": inline, "AttachedPolicyArns": attached})
    atomic_write_json(root / "iam.json", {"policies": policies, "roles": roles})
    return len(policies) + len(roles)


def restore_iam(iam: Any, root: Path, account_id: str | None = None) -> int:
    """Create the roles and policies saved in ``root/iam.json`` (those that do not exist yet); with
    ``account_id``, roles get their saved ``CreateDate`` back (on moto's in-process backend)."""
    path = root / "iam.json"
    if not path.exists():
        return 0
    saved = json.loads(path.read_text("utf-8"))
    count = 0
    for pol in saved.get("policies", []):
        try:
            iam.create_policy(PolicyName=pol["PolicyName"], Path=pol["Path"], Description=pol["Description"],
                              PolicyDocument=pol["PolicyDocument"])
            count += 1
        except iam.exceptions.EntityAlreadyExistsException:
            pass
    for role in saved.get("roles", []):
        try:
            iam.create_role(RoleName=role["RoleName"], Path=role["Path"], Description=role["Description"],
                            MaxSessionDuration=role["MaxSessionDuration"],
                            AssumeRolePolicyDocument=role["AssumeRolePolicyDocument"])
        except iam.exceptions.EntityAlreadyExistsException:
            continue
        for pname, doc in role["InlinePolicies"].items():
            iam.put_role_policy(RoleName=role["RoleName"], PolicyName=pname, PolicyDocument=doc)
        for policy_arn in role["AttachedPolicyArns"]:
            try:
                iam.attach_role_policy(RoleName=role["RoleName"], PolicyArn=policy_arn)
            except iam.exceptions.NoSuchEntityException:
                logger.warning("role %s: the policy %s no longer exists; not attached", role["RoleName"], policy_arn)
        if account_id is not None and role.get("CreateDate") is not None:
            _set_role_created(account_id, role["RoleName"], role["CreateDate"])
        count += 1
    return count


def _set_role_created(account_id: str, name: str, epoch: float) -> None:
    import datetime
    try:
        from moto.iam.models import iam_backends
        iam_backends[account_id]["aws"].get_role(name).create_date = datetime.datetime.fromtimestamp(
            epoch, tz=datetime.timezone.utc).replace(tzinfo=None)
    except Exception as e:  # moto's internals moved: the role keeps the restart time
        logger.warning("could not restore the CreateDate of role %s (%s: %s)", name, type(e).__name__, e)


def _json_doc(doc: Any) -> str:
    """A policy document as JSON text (boto3 gives it decoded, or URL-encoded text)."""
    if isinstance(doc, str):
        from urllib.parse import unquote
        text = unquote(doc)
        try:
            return json.dumps(json.loads(text))
        except ValueError:
            return text
    return json.dumps(doc)
