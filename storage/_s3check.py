"""The start-up check of an S3 bucket (``S3Storage.check``): reachable, Object Lock as configured,
writable, and refusing a second conditional write of one key.

Why the conditional-write probe: recarchive never replaces an object because the store refuses a
``PutObject`` with ``If-None-Match: *`` on a taken key (AWS S3 since August 2024, MinIO, Ceph RGW,
Cloudflare R2...). A store that silently ignores the header lets two racing workers replace each
other's recordings and both report success, so such a store is refused at start (exit 3).

The probe is one tiny object at a fixed key, ``_state/_checks/conditional-write``, written, then
written again (which must be refused), then removed (that very version). Under a bucket's default
retention nothing can remove it, so it is left behind; the fixed key means one such object per bucket
prefix for good: every later check meets it already there, and that refusal is itself the proof.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from storage._multipart import content_md5
from storage._s3errors import error_code, translated
from worker.errors import ObjectExists, StorageUnavailable

__all__ = ["PROBE_KEY", "check_bucket", "remove_probe"]

PROBE_KEY = "_state/_checks/conditional-write"
_PROBE_BODY = b"recarchive: this store refuses a second write of one key (If-None-Match)\n"


def check_bucket(client: Any, bucket: str, prefix: str, endpoint: str, extra: Mapping[str, Any], *,
                 need_object_lock: bool, write: bool = True) -> None:
    """``StorageUnavailable`` naming the endpoint unless the bucket is usable as configured;
    ``write=False`` checks reading only (auditing commands) and writes nothing."""
    where = f"s3://{bucket}"
    try:
        with translated("reach bucket", where, endpoint, missing=True):
            client.head_bucket(Bucket=bucket)
    except FileNotFoundError as exc:  # a 404 on HEAD bucket carries no error code
        raise StorageUnavailable(f"bucket {bucket} does not exist at {endpoint}") from exc
    lock = _lock_configuration(client, bucket, endpoint, required=need_object_lock)
    if need_object_lock and (lock is None or lock.get("ObjectLockEnabled") != "Enabled"):
        raise StorageUnavailable(f"bucket {bucket} has no Object Lock but [retention] is configured")
    if write:
        _probe_conditional_write(client, bucket, prefix, endpoint, extra, removable=not (lock or {}).get("Rule"))


def _lock_configuration(client: Any, bucket: str, endpoint: str, *, required: bool) -> Mapping[str, Any] | None:
    try:
        response = client.get_object_lock_configuration(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) == "ObjectLockConfigurationNotFoundError" or not required:
            return None
        with translated("read the Object Lock configuration of", f"s3://{bucket}", endpoint):
            raise
    configuration: Mapping[str, Any] = response.get("ObjectLockConfiguration") or {}
    return configuration


def _probe_conditional_write(client: Any, bucket: str, prefix: str, endpoint: str,
                             extra: Mapping[str, Any], *, removable: bool) -> None:
    key = f"{prefix}/{PROBE_KEY}" if prefix else PROBE_KEY
    where = f"s3://{bucket}/{key}"
    request = {"Bucket": bucket, "Key": key, "Body": _PROBE_BODY, "ContentMD5": content_md5(_PROBE_BODY),
               "ContentType": "text/plain", **extra}
    version: str | None = None
    for attempt in (1, 2):
        try:
            with translated("write a probe object to", where, endpoint):
                response = client.put_object(**request, IfNoneMatch="*")
        except ObjectExists:
            if version is not None and removable:
                remove_probe(client, bucket, key, version)
            return  # the store refused to write over the key: conditional writes hold
        version = str(response.get("VersionId") or "null")
        if attempt == 2:
            raise StorageUnavailable(
                f"S3 endpoint {endpoint} ignores conditional writes (a second PutObject with If-None-Match "
                f"on {where} was accepted): racing workers could replace each other's recordings")


def remove_probe(client: Any, bucket: str, key: str, version: str) -> None:
    """Remove the probe's own version (no delete marker left); one left behind costs nothing."""
    try:
        if version == "null":
            client.delete_object(Bucket=bucket, Key=key)
        else:
            client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    except (BotoCoreError, ClientError):
        pass
