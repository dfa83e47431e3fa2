"""The model bundle: LightGBM's text model plus JSON metadata, each file checksummed.

No pickle anywhere: loading a bundle parses text and JSON, so a model bucket can never
make the API run code. The manifest lists every file's sha256 and size; the registry records the
manifest's own sha256, so rewriting a file *and* the manifest is caught too. Sizes come before
contents: ``read_manifest`` refuses a file declared over ``MAX_FILE_BYTES``, and a store checks an
object's length against the manifest before reading it (adapters/model_store.py), so a planted
900 MB file is refused in milliseconds, not after filling the function's memory.

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
# The largest file a bundle may hold. Our models are well under 1 MB of text; LightGBM needs
# several times a model's text size to load it, and the predict function has 1,024 MB.
MAX_FILE_BYTES = {MANIFEST_FILE: 1 << 20, MODEL_FILE: 64 << 20, METADATA_FILE: 16 << 20}


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
        manifest = read_manifest(manifest_bytes, expected_manifest_sha256)
        entries, version = manifest["files"], manifest["version"]
        for name in (MODEL_FILE, METADATA_FILE):
            if name not in files:
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


def read_manifest(manifest_bytes: bytes, expected_manifest_sha256: str | None = None) -> dict[str, Any]:
    """The manifest, checked before any other file is read: its sha256 against the registry's, its
    format, and each file's declared size (a whole number within ``MAX_FILE_BYTES``).

    Raises ArtifactIntegrityError naming the problem.
    """
    if len(manifest_bytes) > MAX_FILE_BYTES[MANIFEST_FILE]:
        raise ArtifactIntegrityError(f"{MANIFEST_FILE} is over {MAX_FILE_BYTES[MANIFEST_FILE]} bytes")
    if expected_manifest_sha256 is not None and sha256_hex(manifest_bytes) != expected_manifest_sha256:
        raise ArtifactIntegrityError("manifest.json does not match the checksum in the registry")
    try:
        manifest = json.loads(manifest_bytes)
        entries = manifest["files"]
        version = manifest["version"]
    except (ValueError, KeyError, TypeError) as e:
        raise ArtifactIntegrityError(f"manifest.json is unreadable: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise ArtifactIntegrityError(f"unsupported bundle format {manifest.get('format')!r}")
    for name in (MODEL_FILE, METADATA_FILE):
        entry = entries.get(name) if isinstance(entries, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ArtifactIntegrityError(f"bundle {version} lacks {name}")
        size = entry.get("bytes")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ArtifactIntegrityError(f"{name} of {version} has no valid size in the manifest: {size!r}")
        if size > MAX_FILE_BYTES[name]:
            raise ArtifactIntegrityError(
                f"{name} of {version} is declared {size} bytes, over the {MAX_FILE_BYTES[name]}-byte limit: "
                f"refusing to read it"
            )
    return manifest
