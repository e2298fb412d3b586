"""Prepare trace files for DuckDB: literal names, duplicate parts, long lines, gzip bombs.

DuckDB reads every path as a glob pattern, so each file is read through a link
with a plain name in a private directory. The same part given twice (a file and
its `.gz` copy) is read once; two programs that wrote the same run id are kept
apart. Lines longer than `MAX_LINE_BYTES` are replaced by a marker record that
the loader reports as a corrupt line (DuckDB would drop them or refuse the file).
"""
from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .errors import UnusableInput
from .refs import process_label

MAX_LINE_BYTES = 16 * 1024 * 1024
TOO_LONG_MARK = b'{"k":"~too-long"}\n'  # a kind no recorder writes; build_tables reports it
MAX_HEADER_BYTES = 1024 * 1024
DEFAULT_MAX_GZIP_RATIO = 100  # traces compress ~10-20x; repeated lines far more
GZIP_RATIO_FLOOR = 64 * 1024 * 1024  # below this decompressed size any ratio is fine


@dataclass
class Source:
    """One trace file as the loader reads it."""

    path: Path  # as the user named it (reported)
    src: Path  # a link with a plain name (read by DuckDB)
    run: str | None = None  # run id to use instead of the header's (two programs, one id)


WORKDIRS: set[str] = set()  # of every Prepared not yet cleaned up (removed on SIGINT/SIGTERM too)


@dataclass
class Prepared:
    sources: list[Source]
    warnings: list[str] = field(default_factory=list)
    workdir: str | None = None

    def cleanup(self) -> None:
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            WORKDIRS.discard(self.workdir)
            self.workdir = None


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def read_header(path: Path) -> dict | None:
    """The header record on the first line of `path`, or None."""
    try:
        with _open(path) as fh:
            line = fh.readline(MAX_HEADER_BYTES)
        rec = orjson.loads(line)
    except (OSError, EOFError, zlib.error, orjson.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) and rec.get("k") == "header" and isinstance(rec.get("run"), str) else None


def prepare(files: list[Path], max_gzip_ratio: float | None = None) -> Prepared:
    """Links for `files`, duplicates left out and run ids made distinct (with warnings)."""
    ratio = max_gzip_ratio if max_gzip_ratio is not None else gzip_ratio_from_env()
    for f in files:
        check_expansion(f, ratio)
    prepared = Prepared(sources=[], workdir=tempfile.mkdtemp(prefix="lockscope-read-"))
    WORKDIRS.add(prepared.workdir)
    try:
        seen: dict[bytes, Path] = {}  # header -> first file with it
        programs: dict[str, list[tuple]] = {}  # run -> (pid, host) of each program, first first
        parts: dict[tuple, Path] = {}  # (run, program, part) -> first file
        for f in files:
            header = read_header(f)
            run = None
            if header is not None:
                key = orjson.dumps(header, option=orjson.OPT_SORT_KEYS)
                if key in seen:
                    prepared.warnings.append(f"{f} is a copy of {seen[key]} ({process_label(header)} part "
                                             f"{header.get('part', 0)}): read once")
                    continue
                seen[key] = f
                program = (header.get("pid"), header.get("host"))
                known = programs.setdefault(header["run"], [])
                if program not in known:
                    known.append(program)
                part_key = (header["run"], program, header.get("part", 0))
                if part_key in parts:
                    prepared.warnings.append(f"{f}: part {part_key[2]} of {process_label(header)} was already "
                                             f"read from {parts[part_key]} with another header: skipped")
                    continue
                parts[part_key] = f
                n = known.index(program)
                if n > 0:
                    run = f"{header['run']}~{n + 1}"
                    if n == 1:
                        pid, host = known[0]
                        prepared.warnings.append(
                            f"one run id was written by more than one program (pid {pid} on {host}, "
                            f"{process_label(header)} on {program[1]}, ...): analyzed as separate processes")
            prepared.sources.append(Source(f, _link(f, len(prepared.sources) + 1, prepared.workdir), run))
    except BaseException:
        prepared.cleanup()
        raise
    return prepared


def _link(path: Path, i: int, workdir: str) -> Path:
    suffix = ".jsonl.gz" if path.name.endswith(".gz") else ".jsonl"
    link = Path(workdir) / f"{i}{suffix}"
    try:
        os.symlink(path.resolve(), link)
    except OSError:
        if any(c in str(path) for c in "*?[]{}"):
            raise UnusableInput(f"{path}: cannot read a file whose name has glob characters "
                                f"(rename it)") from None
        return path
    return link


def cut_long_lines(source: Source, workdir: str) -> tuple[Path, int]:
    """A copy of `source` with each line over MAX_LINE_BYTES replaced by TOO_LONG_MARK.

    Line numbers are kept. Returns the copy and how many lines were replaced."""
    out = Path(workdir) / (source.src.name.split(".")[0] + ".cut.jsonl")
    cut = 0
    with _open(source.src) as fh, open(out, "wb") as dst:
        while True:
            chunk = fh.readline(MAX_LINE_BYTES + 1)
            if not chunk:
                break
            if len(chunk) <= MAX_LINE_BYTES or (len(chunk) == MAX_LINE_BYTES + 1 and chunk.endswith(b"\n")):
                dst.write(chunk)
                continue
            cut += 1
            while chunk and not chunk.endswith(b"\n"):  # skip the rest of the line
                chunk = fh.readline(MAX_LINE_BYTES)
            dst.write(TOO_LONG_MARK)
    return out, cut


def gzip_ratio_from_env() -> float:
    raw = os.environ.get("LOCKSCOPE_MAX_GZIP_RATIO", "")
    try:
        return float(raw) if raw else DEFAULT_MAX_GZIP_RATIO
    except ValueError:
        raise UnusableInput(f"LOCKSCOPE_MAX_GZIP_RATIO={raw!r}: not a number") from None


def check_expansion(path: Path, max_ratio: float) -> None:
    """Refuse a .gz that expands more than `max_ratio` times (0: no limit).

    Decompresses without keeping anything, and stops as soon as the limit is passed."""
    if max_ratio <= 0 or not path.name.endswith(".gz"):
        return
    compressed = path.stat().st_size
    limit = max(GZIP_RATIO_FLOOR, int(compressed * max_ratio))
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(4 * 1024 * 1024):
                total += len(chunk)
                if total > limit:
                    raise UnusableInput(
                        f"{path}: expands more than {max_ratio:g} times ({compressed} bytes compressed, over "
                        f"{total} decompressed): refused (set LOCKSCOPE_MAX_GZIP_RATIO=0 to read it anyway)")
    except (OSError, EOFError, zlib.error):
        return  # unreadable or truncated: the loader reports it
