"""The model bundle: LightGBM's text model plus JSON metadata, each file checksummed.

No pickle anywhere: loading a bundle parses text and JSON, so a model bucket can never
make the API run code. The manifest lists every file's sha256; the registry records the
manifest's own sha256, so rewriting a file *and* the manifest is caught too.

    bundle = ModelBundle(version="v1", model_text=text, metadata={...})
    files, manifest = bundle.to_files()
    same = ModelBundle.from_files(files, manifest, expected_manifest_sha256=sha256(manifest))
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from churnguard.domain.errors import ArtifactIntegrityError

BUNDLE_FORMAT = 1
MODEL_FILE = "model.txt"
METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class ModelBundle:
    version: str
    model_text: str
    metadata: dict[str, Any]

    def to_files(self) -> tuple[dict[str, bytes], bytes]:
        """The bundle's files and its manifest (bytes), ready to store."""
        files = {MODEL_FILE: self.model_text.encode(), METADATA_FILE: canonical_json(self.metadata)}
        manifest = {
            "format": BUNDLE_FORMAT,
            "version": self.version,
            "files": {name: {"sha256": sha256_hex(data), "bytes": len(data)} for name, data in files.items()},
        }
        return files, canonical_json(manifest)

    @classmethod
    def from_files(
        cls,
        files: Mapping[str, bytes],
        manifest_bytes: bytes,
        expected_manifest_sha256: str | None = None,
    ) -> ModelBundle:
        """Rebuild a bundle, verifying every checksum; raises ArtifactIntegrityError on any mismatch."""
        if expected_manifest_sha256 is not None and sha256_hex(manifest_bytes) != expected_manifest_sha256:
            raise ArtifactIntegrityError("manifest.json does not match the checksum in the registry")
        try:
            manifest = json.loads(manifest_bytes)
            entries = manifest["files"]
            version = manifest["version"]
        except (ValueError, KeyError, TypeError) as e:
            raise ArtifactIntegrityError(f"manifest.json is unreadable: {e}") from e
        if manifest.get("format") != BUNDLE_FORMAT:
            raise ArtifactIntegrityError(f"unsupported bundle format {manifest.get('format')!r}")
        for name in (MODEL_FILE, METADATA_FILE):
            if name not in entries or name not in files:
                raise ArtifactIntegrityError(f"bundle {version} lacks {name}")
            data = files[name]
            want = entries[name]
            if len(data) != want["bytes"]:
                raise ArtifactIntegrityError(
                    f"{name} of {version} is {len(data)} bytes, the manifest says {want['bytes']} (truncated?)"
                )
            if sha256_hex(data) != want["sha256"]:
                raise ArtifactIntegrityError(f"{name} of {version} does not match its sha256: refusing to load it")
        try:
            metadata = json.loads(files[METADATA_FILE])
            text = files[MODEL_FILE].decode()
        except (ValueError, UnicodeDecodeError) as e:
            raise ArtifactIntegrityError(f"bundle {version} is unreadable: {e}") from e
        if not text.startswith("tree\n"):
            raise ArtifactIntegrityError(f"{MODEL_FILE} of {version} is not a LightGBM text model")
        return cls(version=version, model_text=text, metadata=metadata)
