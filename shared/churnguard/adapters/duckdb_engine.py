"""The FeatureEngine port over DuckDB: a feature definition's SQL run over CSV or Parquet files.

Objects in S3 are downloaded with boto3 into a staging folder first (DuckDB's httpfs extension
is fetched from the internet at run time, which a Lambda in a VPC, or this machine, cannot do;
extension auto-install is switched off so nothing is ever fetched). Local paths, folders and
globs are read where they are. The session runs in UTC, with bounded threads and memory, and
spills to the staging folder when it must.

    engine = DuckDBFeatureEngine(s3_client=boto3.client("s3"), threads=2, memory_limit_mb=2048)
    frame = engine.compute(definition, cutoffs, as_of=now, training_csv="/tmp/train.csv")
"""

from __future__ import annotations

import fnmatch
import glob
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from churnguard.adapters.aws_errors import s3_errors
from churnguard.adapters.s3_objects import parse_s3_uri
from churnguard.domain.errors import ChurnGuardError, DataValidationError
from churnguard.domain.event_features import (
    DATA_ERROR,
    FeatureDefinition,
    FeatureFrame,
    check_cutoffs,
    compile_query,
    iso,
    micros,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_GLOB = set("*?[")
_EXTENSIONS = {"csv": (".csv", ".csv.gz"), "parquet": (".parquet", ".pq")}


class FeatureEngineMemoryError(ChurnGuardError):
    """The build needs more memory than the engine may use."""


class DuckDBFeatureEngine:
    def __init__(
        self,
        s3_client: S3Client | None = None,
        staging_dir: str | None = None,
        threads: int = 0,
        memory_limit_mb: int = 0,
    ) -> None:
        self.s3 = s3_client
        self.staging_dir = staging_dir
        self.threads = threads
        self.memory_limit_mb = memory_limit_mb

    # ----- the port -----------------------------------------------------------------------
    def compute(
        self,
        definition: FeatureDefinition,
        cutoffs: Sequence[datetime],
        as_of: datetime,
        training_csv: str | None = None,
    ) -> FeatureFrame:
        """Rows of every customer at every cutoff (and, with ``training_csv``, that CSV written there)."""
        started = time.perf_counter()
        cutoffs = check_cutoffs(cutoffs, as_of)
        staging = Path(tempfile.mkdtemp(prefix="churn-features-", dir=self.staging_dir))
        try:
            con = self._connect(staging)
            try:
                return self._compute(con, definition, cutoffs, as_of, staging, training_csv, started)
            finally:
                con.close()
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def sql(self, definition: FeatureDefinition) -> str:
        """The statements the definition compiles to against its data's column types (``churn features sql``)."""
        staging = Path(tempfile.mkdtemp(prefix="churn-features-", dir=self.staging_dir))
        try:
            con = self._connect(staging)
            try:
                return compile_query(definition, self._views(con, definition, staging)).show()
            finally:
                con.close()
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # ----- steps ----------------------------------------------------------------------------
    def _connect(self, staging: Path) -> duckdb.DuckDBPyConnection:
        config: dict[str, Any] = {
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "preserve_insertion_order": False,
            "temp_directory": str(staging / "spill"),
        }
        if self.threads:
            config["threads"] = self.threads
        if self.memory_limit_mb:
            config["memory_limit"] = f"{self.memory_limit_mb}MB"
        con = duckdb.connect(":memory:", config=config)
        con.execute("SET TimeZone = 'UTC'")  # naive timestamps are read as UTC unless a source says otherwise
        return con

    def _compute(
        self,
        con: duckdb.DuckDBPyConnection,
        definition: FeatureDefinition,
        cutoffs: tuple[datetime, ...],
        as_of: datetime,
        staging: Path,
        training_csv: str | None,
        started: float,
    ) -> FeatureFrame:
        types = self._views(con, definition, staging)
        query = compile_query(definition, types)
        horizon = timedelta(days=definition.label.horizon_days)
        con.execute(
            "CREATE TEMP TABLE cutoffs (k INTEGER, cutoff_us BIGINT, cutoff_iso VARCHAR, label_end_iso VARCHAR)"
        )
        con.executemany(
            "INSERT INTO cutoffs VALUES (?, ?, ?, ?)",
            [(k, micros(c), iso(c), iso(c + horizon)) for k, c in enumerate(cutoffs)],
        )
        con.execute(f"SET VARIABLE as_of_us = {micros(as_of)}::BIGINT")
        timings: dict[str, float] = {"prepare": time.perf_counter() - started}
        for statement in query.statements:
            t = time.perf_counter()
            _run(con, statement)
            stage = _stage_of(statement)
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        rejected: dict[str, dict[str, int]] = {}
        for source, reason, n in _run(con, query.rejections).fetchall():
            if n:
                rejected.setdefault(source, {})[reason] = int(n)
        accepted = {source: int(n) for source, n in _run(con, query.accepted).fetchall()}
        per_cutoff = [
            {"customers": int(c), "not_yet_customers": int(ny), "already_churned": int(ac)}
            for _k, c, ny, ac in _run(con, query.cutoff_counts).fetchall()
        ]
        end = _run(con, query.data_end).fetchone()
        data_end = _from_micros(end[0]) if end and end[0] is not None else None
        result = _run(con, query.result).fetchnumpy()
        columns = {}
        for a in definition.entity.attributes:
            columns[a.name] = _objects(result[a.name]) if a.type == "categorical" else _floats(result[a.name])
        for f in definition.features:
            columns[f.name] = _floats(result[f.name])
        timings["fetch"] = time.perf_counter() - t
        if training_csv:
            t = time.perf_counter()
            Path(training_csv).parent.mkdir(parents=True, exist_ok=True)
            _run(con, f"COPY ({query.export}) TO '{_sql_path(training_csv)}' (HEADER, DELIMITER ',')")
            timings["write_csv"] = time.perf_counter() - t
        return FeatureFrame(
            definition=definition,
            cutoffs=cutoffs,
            as_of=as_of,
            ids=_objects(result["id"]),
            k=np.asarray(result["k"], dtype=np.int32),
            columns=columns,
            churned=np.asarray(np.ma.filled(result["churned"], False), dtype=bool),
            rejected=rejected,
            accepted=accepted,
            per_cutoff=per_cutoff,
            data_end=data_end,
            seconds=time.perf_counter() - started,
            timings={k: round(v, 2) for k, v in timings.items()},
        )

    def _views(
        self, con: duckdb.DuckDBPyConnection, definition: FeatureDefinition, staging: Path
    ) -> dict[str, dict[str, str]]:
        """One view per table over its files; returns each table's column types."""
        tables = [("entity", definition.entity.path, definition.entity.format)]
        tables += [(n, s.path, s.format) for n, s in definition.sources.items()]
        types: dict[str, dict[str, str]] = {}
        for name, path, fmt in tables:
            files = self._stage(definition.path_of(path), fmt, staging / name, name)
            listed = "[" + ", ".join(f"'{_sql_path(f)}'" for f in files) + "]"
            reader = (
                f"read_csv({listed}, header = true, all_varchar = true, union_by_name = true)"
                if fmt == "csv"
                else f"read_parquet({listed}, union_by_name = true)"
            )
            view = "raw_entity" if name == "entity" else f"raw_{name}"
            what = "the customer table" if name == "entity" else f"source {name!r}"
            try:
                con.execute(f"CREATE VIEW {view} AS SELECT * FROM {reader}")
                types[name] = {col: typ for col, typ, *_ in con.execute(f"DESCRIBE {view}").fetchall()}
            except duckdb.Error as e:
                raise DataValidationError(f"cannot read {what} ({path}) as {fmt}: {_first_line(e)}") from e
        return types

    def _stage(self, path: str, fmt: str, folder: Path, table: str) -> list[str]:
        """Local files to read: S3 objects downloaded into ``folder``, local paths checked to exist."""
        what = "the customer table" if table == "entity" else f"source {table!r}"
        if path.startswith("s3://"):
            return self._download(path, fmt, folder, what)
        p = Path(path)
        if p.is_dir():
            files = sorted(str(f) for f in p.iterdir() if f.is_file() and f.name.lower().endswith(_EXTENSIONS[fmt]))
        elif _GLOB & set(path):
            files = sorted(glob.glob(path))
        else:
            files = [path] if p.is_file() else []
        if not files:
            raise DataValidationError(f"{what}: no {fmt} file at {path}")
        return files

    def _download(self, uri: str, fmt: str, folder: Path, what: str) -> list[str]:
        if self.s3 is None:
            raise DataValidationError(f"{what} is in S3 ({uri}) but this engine has no S3 client")
        bucket, key = parse_s3_uri(uri)
        pattern = key if _GLOB & set(key) else None
        prefix = key[: min(key.index(c) for c in _GLOB if c in key)] if pattern else key
        folder.mkdir(parents=True, exist_ok=True)
        with s3_errors(f"cannot read {uri}", missing=DataValidationError(f"{what}: {uri} does not exist")):
            if not pattern and not key.endswith("/"):
                keys = [key]
            else:
                keys = []
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    for obj in page.get("Contents", []):
                        k = obj["Key"]
                        if fnmatch.fnmatchcase(k, pattern) if pattern else k.lower().endswith(_EXTENSIONS[fmt]):
                            keys.append(k)
            files = []
            for i, k in enumerate(sorted(keys)):
                local = folder / f"{i:05d}-{Path(k).name}"
                self.s3.download_file(bucket, k, str(local))
                files.append(str(local))
        if not files:
            raise DataValidationError(f"{what}: no {fmt} object under {uri}")
        return files


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyConnection:
    """One statement; DuckDB's errors as the domain's (a data problem named, memory exhausted, or a bug)."""
    try:
        return con.execute(sql)
    except duckdb.OutOfMemoryException as e:
        raise FeatureEngineMemoryError(
            f"the feature build ran out of memory ({_first_line(e)}): give the engine more "
            "(FEATURE_ENGINE_MEMORY_MB, the function's MemorySize) or scale out (README: Features from event logs)"
        ) from e
    except duckdb.Error as e:
        message = str(e)
        if DATA_ERROR in message:
            raise DataValidationError(message.split(DATA_ERROR, 1)[1].splitlines()[0]) from e
        raise DataValidationError(f"the feature build failed: {_first_line(e)}") from e


def _stage_of(statement: str) -> str:
    """Which part of the build a statement is, for the timings: events, features, labels or the rows."""
    name = statement.split("TEMP TABLE ", 1)[1].split(" ", 1)[0] if "TEMP TABLE " in statement else "checks"
    if name.startswith("ev_"):
        return "events"
    if name.startswith(("fw_", "fh_")):
        return "features"
    return {"status": "labels", "result": "rows"}.get(name, "customers")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _sql_path(path: str) -> str:
    return str(path).replace("'", "''")


def _from_micros(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def _floats(col: Any) -> np.ndarray:
    return np.asarray(np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan), dtype=np.float64)


def _objects(col: Any) -> np.ndarray:
    """Text as an object array, None where DuckDB had NULL."""
    out = np.asarray(np.ma.getdata(col), dtype=object)
    mask = np.ma.getmaskarray(col)
    if mask.any():
        out = out.copy()
        out[mask] = None
    return out
