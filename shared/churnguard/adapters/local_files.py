"""Local files behind the same ports as S3, so ``churn score --local`` (and local reports) run the
Lambda's own code on a laptop.

    io = LocalBatchIO()                       # the BatchIO port over a folder
    io.list_inputs("customers/")              # -> [("customers/a.csv", 1234), ...]
    LocalObjectStore().write("out/report.html", body)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from churnguard.domain.batch.chunks import chunk_records, first_line
from churnguard.domain.errors import DataValidationError, StorageError

if TYPE_CHECKING:
    from churnguard.adapters.s3_objects import S3ObjectStore


def _write_atomically(path: str, body: bytes) -> None:
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_bytes(body)
        tmp.replace(p)  # a reader never sees half a file
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e}") from e


class LocalBatchIO:
    """The BatchIO port (services/ports.py) over local files."""

    def list_inputs(self, path: str) -> list[tuple[str, int]]:
        p = Path(path)
        files = sorted(p.glob("*.csv")) if p.is_dir() else [p]
        found = [(str(f), f.stat().st_size) for f in files if f.is_file()]
        if not found:
            raise DataValidationError(f"input {path} does not exist (no such file, or no .csv files in that folder)")
        return found

    def read_range(self, path: str, first: int, last: int) -> bytes:
        with open(path, "rb") as f:
            f.seek(first)
            return f.read(max(last - first + 1, 0))

    def header(self, path: str) -> bytes:
        return first_line(lambda first, last: self.read_range(path, first, last))

    def read_lines(self, path: str, start: int, end: int, size: int) -> bytes:
        return chunk_records(lambda first, last: self.read_range(path, first, last), start, end, size)

    def put(self, path: str, body: bytes, content_type: str = "") -> None:
        _write_atomically(path, body)

    def locate(self, path: str) -> dict[str, str]:
        return {"path": path}


class LocalObjectStore:
    """The ObjectStore port over local paths."""

    def read(self, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except FileNotFoundError as e:
            raise DataValidationError(f"{path} does not exist: check the path") from e
        except IsADirectoryError as e:
            raise DataValidationError(f"{path} is a folder: give the path of a file in it") from e
        except OSError as e:
            raise DataValidationError(f"cannot read {path}: {e.strerror or e}") from e

    def write(self, path: str, body: bytes, content_type: str = "") -> None:
        _write_atomically(path, body)


class LocalOrS3ObjectStore:
    """The ObjectStore port over both: ``s3://`` locations through ``s3``, anything else as a local path
    (local reports of the drift check and evaluation, whose data may still be in S3)."""

    def __init__(self, s3: S3ObjectStore, local: LocalObjectStore | None = None) -> None:
        self.s3, self.local = s3, local or LocalObjectStore()

    def _for(self, uri: str) -> S3ObjectStore | LocalObjectStore:
        return self.s3 if uri.startswith("s3://") else self.local

    def read(self, uri: str) -> bytes:
        return self._for(uri).read(uri)

    def write(self, uri: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._for(uri).write(uri, body, content_type)
