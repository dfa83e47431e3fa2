"""Model bundles in S3: ``s3://{bucket}/{prefix}/{version}/{model.txt,metadata.json,manifest.json}``.

Reading checks sizes before contents: the manifest first (its own length, then its sha256 against
the registry's and each file's declared size, domain/bundle.read_manifest), then each file's
object length against the manifest before its body is read, and the body is read in pieces up to
the declared size only. A file that is not what the manifest says is refused (ArtifactIntegrityError,
counted by the caller as ArtifactIntegrityFailure) without holding more than a piece of it in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import s3_errors
from churnguard.domain.bundle import (
    MANIFEST_FILE,
    MAX_FILE_BYTES,
    METADATA_FILE,
    MODEL_FILE,
    ModelBundle,
    read_manifest,
    sha256_hex,
)
from churnguard.domain.errors import ArtifactIntegrityError, ModelNotFoundError, StorageError
from churnguard.domain.model_registry import check_version_id

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Bodies are read in pieces of this size, so a refused file never sits whole in memory.
READ_PIECE_BYTES = 1 << 20


class S3ModelStore:
    def __init__(self, bucket: str, s3_client: S3Client, prefix: str = "models") -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.s3 = s3_client

    def location(self, version: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{check_version_id(version)}/"

    def _key(self, version: str, name: str) -> str:
        return f"{self.prefix}/{check_version_id(version)}/{name}"

    def put(self, bundle: ModelBundle) -> dict[str, Any]:
        """Write the bundle; the manifest goes last so a half-written bundle never verifies, and a write
        that fails part-way removes what it wrote."""
        files, manifest = bundle.to_files()
        try:
            for name, data in files.items():
                self.s3.put_object(Bucket=self.bucket, Key=self._key(bundle.version, name), Body=data)
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self._key(bundle.version, MANIFEST_FILE),
                Body=manifest,
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as e:
            self.delete(bundle.version)
            raise StorageError(f"cannot write model {bundle.version} to s3://{self.bucket}: {e}") from e
        return {
            "location": self.location(bundle.version),
            "manifest_sha256": sha256_hex(manifest),
            "files": {name: sha256_hex(data) for name, data in files.items()},
        }

    def get(self, version: str, manifest_sha256: str | None) -> ModelBundle:
        """Read and verify a bundle; raises ModelNotFoundError, ArtifactIntegrityError or StorageError."""
        manifest_bytes = self._read(version, MANIFEST_FILE, None)
        manifest = read_manifest(manifest_bytes, manifest_sha256)  # sizes and checksum before any other read
        blobs = {
            name: self._read(version, name, manifest["files"][name]["bytes"]) for name in (MODEL_FILE, METADATA_FILE)
        }
        return ModelBundle.from_files(blobs, manifest_bytes, expected_manifest_sha256=manifest_sha256)

    def _read(self, version: str, name: str, declared: int | None) -> bytes:
        """One file's bytes: refused before its body is read when its length is over the limit or not the
        ``declared`` size, and read in pieces up to that size only."""
        limit = MAX_FILE_BYTES[name] if declared is None else declared
        missing = (
            ModelNotFoundError(f"no model bundle at {self.location(version)}")
            if name == MANIFEST_FILE
            else ArtifactIntegrityError(f"{name} of {version} is missing from {self.location(version)}")
        )
        with s3_errors(f"cannot read {name} of {version}", missing=missing):
            obj = self.s3.get_object(Bucket=self.bucket, Key=self._key(version, name))
        body = obj["Body"]
        try:
            length = int(obj.get("ContentLength", -1))
            if length > limit or (declared is not None and length != declared):
                raise ArtifactIntegrityError(
                    f"{name} of {version} is {length} bytes, "
                    + (
                        f"the manifest says {declared} (truncated or replaced)"
                        if declared is not None
                        else f"over the {limit}-byte limit"
                    )
                    + ": refusing to read it"
                )
            pieces: list[bytes] = []
            got = 0
            for piece in _pieces(body):
                got += len(piece)
                if got > limit:  # the object grew after its length was read: stop at the limit
                    raise ArtifactIntegrityError(f"{name} of {version} is longer than {limit} bytes: refusing it")
                pieces.append(piece)
            return b"".join(pieces)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot read {name} of {version}: {e}") from e
        finally:
            body.close()  # an unread rest is dropped with the connection, not downloaded

    def delete(self, version: str) -> None:
        for name in (MANIFEST_FILE, MODEL_FILE, METADATA_FILE):
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=self._key(version, name))
            except (ClientError, BotoCoreError):
                pass  # best effort: an orphaned object is harmless, the registry never points at it

    def bundles(self) -> dict[str, datetime]:
        """Every version with objects under the prefix, with its newest object's time (``churn models gc``)."""
        found: dict[str, datetime] = {}
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + "/"):
                for obj in page.get("Contents", []):
                    version = obj["Key"][len(self.prefix) + 1 :].split("/", 1)[0]
                    if version and (version not in found or obj["LastModified"] > found[version]):
                        found[version] = obj["LastModified"]
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot list s3://{self.bucket}/{self.prefix}/: {e}") from e
        return found


def _pieces(body: Any) -> Iterator[bytes]:
    while True:
        piece = body.read(READ_PIECE_BYTES)
        if not piece:
            return
        yield piece
