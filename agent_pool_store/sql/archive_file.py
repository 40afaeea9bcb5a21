"""Archive files: export lines written durably and checked, and read back (gzip or not).

An archive is an export (:mod:`agent_pool_store.sql.transfer`): JSON Lines, UTF-8, one
record or event counter per line, gzip-compressed when the file's name ends in ``.gz``. It
is written as ``NAME.partial``, flushed and ``fsync``-ed, read back and compared with what
was written (SHA-256 of the lines), renamed to ``NAME`` and its directory ``fsync``-ed: once
:func:`write_archive` returns, the file is complete on disk, or it raised and left no file.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent_pool_store.errors import AgentError, AgentErrorKind, RetryClassification

CHUNK = 1 << 20
"""Bytes read per call when checking a file."""


@dataclass(frozen=True)
class ArchiveFile:
    """An archive file as written (or read)."""

    path: Path
    lines: int
    """How many lines it holds (records and event counters)."""
    sha256: str
    """SHA-256 of its uncompressed content."""


def compressed(path: Path) -> bool:
    """Whether ``path`` is a gzip archive (its name ends in ``.gz``)."""
    return path.name.endswith(".gz")


def file_error(path: Path, what: str) -> AgentError:
    """A file that cannot be used as an archive (nothing in the database was changed)."""
    return AgentError(
        AgentErrorKind.JOURNAL_FAILURE,
        RetryClassification.USER_ACTION_NEEDED,
        f"archive file {str(path)!r}: {what}",
    )


def _read_all(path: Path) -> bytes:
    with path.open("rb") as raw:
        if not compressed(path):
            return raw.read()
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            return unzipped.read()


def _digest_of(path: Path, *, gzipped: bool) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as raw:
        stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        with stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform that cannot open directories: nothing more to do
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def refuse_existing(destination: Path) -> None:
    """An archive never replaces a file: AgentError if ``destination`` exists."""
    if destination.exists():
        raise file_error(destination, "already exists; an archive never replaces a file")


def write_archive(destination: Path, lines: Iterable[str]) -> ArchiveFile:
    """Write ``lines`` (export lines, without newline) durably to ``destination``.

    ``destination.partial`` is written (gzip when the name ends in ``.gz``), ``fsync``-ed,
    read back and compared; then renamed to ``destination`` (replacing it) and the directory
    ``fsync``-ed. On any failure the partial file is removed and AgentError (or the OS
    error) raised.
    """
    partial = destination.with_name(destination.name + ".partial")
    digest, count = hashlib.sha256(), 0
    try:
        with partial.open("wb") as raw:
            stream: io.BufferedIOBase = (
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="")
                if compressed(destination)
                else raw
            )
            with contextlib.nullcontext(stream) if stream is raw else stream:
                for line in lines:
                    data = line.encode("utf-8") + b"\n"
                    digest.update(data)
                    stream.write(data)
                    count += 1
            raw.flush()
            os.fsync(raw.fileno())
        if _digest_of(partial, gzipped=compressed(destination)) != digest.hexdigest():
            raise file_error(partial, "reading it back did not give what was written")
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_directory(destination.parent)
    return ArchiveFile(destination, count, digest.hexdigest())


def lines_of_export(data: bytes) -> list[str]:
    r"""The lines of an export's bytes: UTF-8 (a BOM is skipped), split on ``\\n`` only.

    Only ``\\n`` ends a line: a JSON string may hold U+2028 and other characters that
    :meth:`str.splitlines` would split on.
    """
    text = data.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def read_archive(source: Path) -> list[str]:
    """The export lines of an archive file (gunzipped when its name ends in ``.gz``)."""
    try:
        data = _read_all(source)
    except FileNotFoundError:
        raise file_error(source, "does not exist") from None
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise file_error(source, f"cannot be read: {error}") from None
    try:
        return lines_of_export(data)
    except UnicodeDecodeError as error:
        raise file_error(source, f"is not UTF-8 text: {error}") from None
