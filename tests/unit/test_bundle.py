import json

import pytest

from churnguard.domain.bundle import METADATA_FILE, MODEL_FILE, ModelBundle, sha256_hex
from churnguard.domain.errors import ArtifactIntegrityError


def test_round_trip_verifies(trained):
    bundle = trained[0]
    files, manifest = bundle.to_files()
    again = ModelBundle.from_files(files, manifest, expected_manifest_sha256=sha256_hex(manifest))
    assert again == bundle


def test_no_pickle_in_a_bundle(trained):
    files, manifest = trained[0].to_files()
    assert files[MODEL_FILE].startswith(b"tree\nversion=")
    json.loads(files[METADATA_FILE])
    json.loads(manifest)
    for blob in (*files.values(), manifest):
        assert not blob.startswith(b"\x80")  # pickle protocol 2+ header


@pytest.mark.parametrize("name", [MODEL_FILE, METADATA_FILE])
def test_tampered_file_is_refused(trained, name):
    files, manifest = trained[0].to_files()
    data = bytearray(files[name])
    data[len(data) // 2] ^= 0x01
    files = {**files, name: bytes(data)}
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        ModelBundle.from_files(files, manifest, sha256_hex(manifest))


def test_truncated_file_is_refused(trained):
    files, manifest = trained[0].to_files()
    files = {**files, MODEL_FILE: files[MODEL_FILE][:-100]}
    with pytest.raises(ArtifactIntegrityError, match="truncated"):
        ModelBundle.from_files(files, manifest, sha256_hex(manifest))


def test_rewritten_manifest_is_caught_by_the_registry_checksum(trained):
    files, manifest = trained[0].to_files()
    evil_model = files[MODEL_FILE].replace(b"tree\n", b"tree\n\n", 1)
    forged = json.loads(manifest)
    forged["files"][MODEL_FILE] = {"sha256": sha256_hex(evil_model), "bytes": len(evil_model)}
    forged_bytes = json.dumps(forged).encode()
    with pytest.raises(ArtifactIntegrityError, match="registry"):
        ModelBundle.from_files({**files, MODEL_FILE: evil_model}, forged_bytes, sha256_hex(manifest))


def test_missing_file_is_refused(trained):
    files, manifest = trained[0].to_files()
    with pytest.raises(ArtifactIntegrityError, match="lacks"):
        ModelBundle.from_files({MODEL_FILE: files[MODEL_FILE]}, manifest, sha256_hex(manifest))
