"""Model bundles in S3: ``s3://{bucket}/{prefix}/{version}/{model.txt,metadata.json,manifest.json}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import error_code
from churnguard.domain.bundle import MANIFEST_FILE, METADATA_FILE, MODEL_FILE, ModelBundle, sha256_hex
from churnguard.domain.errors import ArtifactIntegrityError, ModelNotFoundError, StorageError
from churnguard.domain.model_registry import check_version_id

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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
        """Write the bundle; the manifest goes last so a half-written bundle never verifies."""
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
            raise StorageError(f"cannot write model {bundle.version} to s3://{self.bucket}: {e}") from e
        return {
            "location": self.location(bundle.version),
            "manifest_sha256": sha256_hex(manifest),
            "files": {name: sha256_hex(data) for name, data in files.items()},
        }

    def get(self, version: str, manifest_sha256: str | None) -> ModelBundle:
        """Read and verify a bundle; raises ModelNotFoundError, ArtifactIntegrityError or StorageError."""
        blobs: dict[str, bytes] = {}
        for name in (MANIFEST_FILE, MODEL_FILE, METADATA_FILE):
            try:
                obj = self.s3.get_object(Bucket=self.bucket, Key=self._key(version, name))
                blobs[name] = obj["Body"].read()
            except ClientError as e:
                code = error_code(e)
                if code in ("NoSuchKey", "404", "NotFound"):
                    if name == MANIFEST_FILE:
                        raise ModelNotFoundError(f"no model bundle at {self.location(version)}") from e
                    raise ArtifactIntegrityError(f"{name} of {version} is missing from {self.location(version)}") from e
                raise StorageError(f"cannot read {name} of {version}: {e}") from e
            except BotoCoreError as e:
                raise StorageError(f"cannot read {name} of {version}: {e}") from e
        manifest = blobs.pop(MANIFEST_FILE)
        return ModelBundle.from_files(blobs, manifest, expected_manifest_sha256=manifest_sha256)

    def delete(self, version: str) -> None:
        for name in (MANIFEST_FILE, MODEL_FILE, METADATA_FILE):
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=self._key(version, name))
            except (ClientError, BotoCoreError):
                pass  # best effort: an orphaned object is harmless, the registry never points at it
