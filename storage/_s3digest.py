"""Which digest of an upload the store actually checks, found out once at start-up.

A digest sent with a ``PutObject`` is worth its cost only if the store compares it with the bytes it
received. recarchive hashes every recording with SHA-256 while downloading it (that hash goes into
``metadata.json``); sending it as ``x-amz-checksum-sha256`` costs nothing more, and a store that
checks it (AWS S3, MinIO, Cloudflare R2...) then refuses any upload whose bytes differ from what was
hashed: the hash recorded is the hash the store verified. ``Content-MD5`` is the older check every
S3-compatible store is meant to understand, but it needs a second hash of every byte (MD5 runs at
about half SHA-256's speed here). So the probe asks, in this order:

1. ``PutObject`` with a deliberately wrong ``x-amz-checksum-sha256``. Refused as a bad digest: the
   store checks SHA-256 → ``sha256`` (one request, nothing written).
2. Else ``PutObject`` with a deliberately wrong ``Content-MD5``. Refused as a bad digest → ``md5``:
   originals are hashed with MD5 as well and carry ``Content-MD5``.
3. Else the store checks neither (a test double such as moto) → ``none``: no MD5 is computed for a
   check nobody makes; the SHA-256 checksum header still goes (free, and Object Lock writes need
   ``x-amz-sdk-checksum-algorithm`` or ``Content-MD5``), unless the store refused that header in step 1,
   in which case ``md5`` is kept as the one form every store accepts.

Either way fixity is proven end to end by ``recarchive verify``, which re-reads every object and
compares its SHA-256 with ``metadata.json``; this only decides what the store checks in transit.

The probe objects (fixed keys under ``_state/_checks/``, written with ``If-None-Match``) exist only on
a store that accepted a wrong digest, and are removed again (their own version) where the store lets
us; under a bucket's default retention they stay, and a later probe meets them (412), which says the
same thing.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from botocore.exceptions import ClientError

from storage._s3check import remove_probe
from storage._s3errors import BAD_DIGEST, error_code, translated
from storage.base import UploadDigest
from worker.errors import ObjectExists

__all__ = ["MD5_PROBE_KEY", "SHA256_PROBE_KEY", "checksum_sha256", "probe_upload_digest"]

SHA256_PROBE_KEY = "_state/_checks/checksum-sha256"
MD5_PROBE_KEY = "_state/_checks/content-md5"
_BODY = b"recarchive: this body does not match the digest sent with it\n"
_WRONG = b"not the body"
#: what stores answer a digest that does not match the body (AWS and most: BadDigest); some answer a
#: probe's wrong digest as malformed (InvalidDigest), which says as much that they check it
_DIGEST_REFUSED = BAD_DIGEST | {"InvalidDigest"}


def checksum_sha256(hex_digest: str) -> str:
    """The ``x-amz-checksum-sha256`` value (base64 of the digest) of a hex SHA-256."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def probe_upload_digest(client: Any, bucket: str, prefix: str, endpoint: str,
                        extra: Mapping[str, Any]) -> UploadDigest:
    """Which digest the store checks on ``PutObject`` (see the module docstring)."""
    wrong_sha = checksum_sha256(hashlib.sha256(_WRONG).hexdigest())
    sha_answer = _probe(client, bucket, _key(prefix, SHA256_PROBE_KEY), endpoint, extra,
                        {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": wrong_sha})
    if sha_answer == "refused":
        return "sha256"
    wrong_md5 = base64.b64encode(hashlib.md5(_WRONG, usedforsecurity=False).digest()).decode("ascii")
    md5_answer = _probe(client, bucket, _key(prefix, MD5_PROBE_KEY), endpoint, extra, {"ContentMD5": wrong_md5})
    if md5_answer == "refused" or sha_answer == "unsupported":
        return "md5"
    return "none"


Answer = Literal["refused", "accepted", "unsupported"]


def _key(prefix: str, key: str) -> str:
    return f"{prefix}/{key}" if prefix else key


def _probe(client: Any, bucket: str, key: str, endpoint: str, extra: Mapping[str, Any],
           digest: Mapping[str, str]) -> Answer:
    request = {"Bucket": bucket, "Key": key, "Body": _BODY, "ContentType": "text/plain", "IfNoneMatch": "*",
               **extra, **digest}
    try:
        with translated("write a checksum probe to", f"s3://{bucket}/{key}", endpoint):
            try:
                response = client.put_object(**request)
            except ClientError as exc:
                code = error_code(exc)
                if code in _DIGEST_REFUSED:
                    return "refused"
                if code.startswith("4") or code in ("InvalidArgument", "InvalidRequest", "NotImplemented"):
                    return "unsupported"
                raise
    except ObjectExists:
        return "accepted"  # an earlier probe's object (kept by retention): that wrong digest was accepted then
    remove_probe(client, bucket, key, str(response.get("VersionId") or "null"))
    return "accepted"
