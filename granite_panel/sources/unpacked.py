"""How big a received file is once unpacked, found out before anything reads it.

A file opened in the dashboard arrives as at most INGEST_MAX_BYTES, but packed data can
unpack to far more: a repeated row gzips a thousand times smaller, and bzip2 or xz shrink
it by more again. So a 16 MB upload could be a 16 GB CSV, and a Parquet file or a
workbook (a zip archive of XML) can hold as much. pandas would read it until the server's
memory ran out, stopping the stream for every viewer. Here a received file is unpacked
(compressed text) or measured (a workbook's archive, a Parquet file's metadata) while
counting, and refused as soon as it passes the limit: ``UNPACKED_RATIO`` times
INGEST_MAX_BYTES, room for ordinary data (text compresses 3-10 times, a workbook's XML
about as much) but not for a bomb.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
from pathlib import Path

from .points import InputError
from .table_file import COMPRESSED_SUFFIXES, file_kind

UNPACKED_RATIO = 8
DEFAULT_RECEIVED_MAX = 16 * 1024 * 1024  # INGEST_MAX_BYTES' default
CHUNK = 1024 * 1024
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_ZIPPED_WORKBOOKS = (".xlsx", ".xlsm", ".xlsb", ".ods")  # .xls is not packed


def unpacked_limit(max_bytes: int) -> int:
    """The most bytes a received file may unpack to, for a received size limit."""
    return UNPACKED_RATIO * int(max_bytes)


def unpack_received(path: Path, limit: int) -> Path:
    """The file to read in place of ``path``: compressed text unpacked beside it (so it is
    unpacked once, here), any other file itself once its unpacked size is known to fit.
    ``InputError`` naming the file once its content passes ``limit`` bytes. A file that is
    not what its name says is left to the reader, whose error names the problem."""
    suffix = path.suffix.lower()
    kind = file_kind(path)
    if suffix in COMPRESSED_SUFFIXES and kind is not None:
        return _unpack_text(path, suffix, limit)
    if kind == "spreadsheet" and suffix in _ZIPPED_WORKBOOKS:
        _measure_archive(path, limit)
    elif kind == "parquet":
        _measure_parquet(path, limit)
    return path


def _too_big(path: Path, limit: int) -> InputError:
    return InputError(
        f"{path}: unpacks to more than {limit:,} bytes ({UNPACKED_RATIO} times INGEST_MAX_BYTES), "
        "too much to read safely; open a part of it, or raise INGEST_MAX_BYTES")


def _copy(source, target, path: Path, limit: int, done: int = 0) -> int:
    """Copy ``source`` into ``target`` (None: only count) up to ``limit`` bytes in all."""
    while chunk := source.read(CHUNK):
        done += len(chunk)
        if done > limit:
            raise _too_big(path, limit)
        if target is not None:
            target.write(chunk)
    return done


def _unpack_text(path: Path, suffix: str, limit: int) -> Path:
    target = path.with_name(path.name[: -len(suffix)] or "unpacked")
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                files = [i for i in archive.infolist() if not i.is_dir()]
                if len(files) != 1:
                    raise InputError(f"{path}: the archive holds {len(files)} files; "
                                     "expected one table")
                with archive.open(files[0]) as source, open(target, "wb") as out:
                    _copy(source, out, path, limit)
        else:
            with _OPENERS[suffix](path, "rb") as source, open(target, "wb") as out:
                _copy(source, out, path, limit)
    except Exception as exc:  # nothing half-unpacked is left; a broken pack: one line
        target.unlink(missing_ok=True)
        if isinstance(exc, InputError):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: not a readable {suffix[1:]} file ({first})") from None
    return target


def _measure_archive(path: Path, limit: int) -> None:
    """Unpack every member of a workbook's archive, counting (its headers' sizes may lie)."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile):
        return  # the reader says what is wrong with it
    done = 0
    with archive:
        for info in archive.infolist():
            try:
                with archive.open(info) as member:
                    done = _copy(member, None, path, limit, done)
            except InputError:
                raise
            except Exception:  # a broken member: the reader names the problem
                return


def _measure_parquet(path: Path, limit: int) -> None:
    """A Parquet file's size in memory from its metadata: its row groups' uncompressed
    bytes, or eight bytes a cell where its encoding packs more (a run of one value)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except Exception:  # not a Parquet file after all: the reader says so
        return
    stored = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if max(stored, 8 * meta.num_rows * meta.num_columns) > limit:
        raise _too_big(path, limit)
