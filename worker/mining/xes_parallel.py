"""Parse a large XES document on several cores: the expat parser of :mod:`xes_expat` per part.

Expat calls back into Python for every XML element, so one core parses ~50 MB of XES a second
however the callbacks are written (profiling showed the bare callback machinery, with empty
handlers, costs two thirds of it). The document is therefore cut after ``</trace>`` tags into as
many parts as there are cores (at most ``MAX_PARTS``); this process parses the first part while
child processes parse the others. A child is ``python -I -S xes_expat.py`` on its part, written to
a temporary file (a pipe fed by a thread would starve while this process holds the GIL in expat):
standard library only, so it starts in milliseconds; it answers, in another file, with its columns
joined by NUL characters, which polars splits back into series without a Python loop. On two
otherwise idle cores a 500k-event XES is read ~1.6x faster than by one parser.

Every part is a complete document: the original prolog and root start tag, a run of whole
traces, and the root end tag. A cut never lands inside a trace, and a ``</trace`` found inside a
comment, CDATA section or processing instruction would leave the first part unterminated, which
expat reports. Whenever anything is unusual (a DOCTYPE, no clean cut, unnamed traces in a child,
an XML error, a child that fails or stalls) this module returns None and the caller parses the
whole document in one process, which gives the exact result or error message.
"""

from __future__ import annotations

import itertools
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import xml.parsers.expat as expat
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from . import xes_expat

# Below this many bytes a child process costs more than it saves (start + transfer ~30 ms).
PARALLEL_MIN_BYTES = 16 * 1024**2
# Above this the document is not held in memory at once; it is streamed through one parser.
PARALLEL_MAX_BYTES = 2 * 1024**3
MAX_PARTS = 4
# This process's part is this much larger than an even share: a child also encodes its answer.
_FIRST_PART_EXTRA = 0.015
# A child parses well over 10 MB/s; give up (and parse serially) if it is far slower than that.
_CHILD_MIN_RATE = 2 * 1024**2
_CHILD_SCRIPT = Path(xes_expat.__file__)

_PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?\s*(?:(?:<\?.*?\?>|<!--.*?-->)\s*)*", re.S)
_ROOT_TAG = re.compile(rb"""<([^\s/>!?]+)(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*>""")


@dataclass
class ParsedXes:
    """Event columns as String series plus the counts the reader reports."""

    columns: dict[str, pl.Series]
    unnamed_traces: int
    orphan_events: int


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _cuts(data: bytes, shares: list[float], close_tag: bytes, start: int) -> list[int]:
    """Offsets just after a ``</trace>`` at or past each cumulative share of the body."""
    cuts: list[int] = []
    body = len(data) - start
    total = 0.0
    for share in shares[:-1]:
        total += share
        at = data.find(close_tag, start + int(body * total))
        while at >= 0:
            end = data.find(b">", at)
            if end < 0:
                break
            if not data[at + len(close_tag) : end].strip():
                if not cuts or end + 1 > cuts[-1]:
                    cuts.append(end + 1)
                break
            at = data.find(close_tag, end)
    return cuts


def _shares(parts: int) -> list[float]:
    """Part sizes: this process gets a little more, as each child also encodes its answer."""
    first = min(1.0, 1 / parts + _FIRST_PART_EXTRA)
    return [first] + [(1 - first) / (parts - 1)] * (parts - 1)


def _decode(blob: bytes, n: int, name: str) -> pl.Series:
    """A child's column back into a String series (MISSING -> null)."""
    if n == 0:
        return pl.Series(name, [], dtype=pl.String)
    values = pl.Series(name, [blob.decode("utf-8")], dtype=pl.String).str.split(xes_expat.SEPARATOR).explode()
    return pl.select(
        pl.when(values == xes_expat.MISSING).then(None).otherwise(values).alias(name)
    ).to_series()


def _read_answer(raw: bytes) -> tuple[dict[str, int], dict[str, pl.Series]] | None:
    """Parse :func:`xes_expat.encode` output."""
    import json

    newline = raw.find(b"\n")
    if newline < 0:
        return None
    header = json.loads(raw[:newline])
    pos = newline + 1
    columns: dict[str, pl.Series] = {}
    for name in xes_expat.COLUMNS:
        (size,) = struct.unpack_from("<Q", raw, pos)
        pos += 8
        columns[name] = _decode(raw[pos : pos + size], header["events"], name)
        pos += size
    if any(s.len() != header["events"] for s in columns.values()):
        return None
    return header, columns


class _Child:
    """One child parser: bytes [0, head) + [start, stop) of ``source`` + ``tail``."""

    def __init__(
        self, source: Path, head: int, start: int, stop: int, tail: bytes, start_key: str | None, out: Path
    ) -> None:
        self.size = head + stop - start
        self.out = out
        self.proc = subprocess.Popen(  # noqa: S603 - our own script, run by this interpreter
            [sys.executable, "-I", "-S", str(_CHILD_SCRIPT), start_key or "", str(out), str(source)]
            + [str(head), str(start), str(stop), tail.decode("utf-8")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def result(self) -> bytes | None:
        """The child's answer, or None when it failed or took far too long."""
        try:
            code = self.proc.wait(timeout=30 + self.size / _CHILD_MIN_RATE)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        return self.out.read_bytes() if code == 0 else None

    def kill(self) -> None:
        """Stop the child (idempotent) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class _Launcher(threading.Thread):
    """Starts the children; for data that is not a plain file, writes their parts first.

    Runs beside this process's own parsing: file writes release the GIL, so the copy costs no
    wall time.
    """

    def __init__(
        self,
        jobs: list[tuple[int, int]],
        data: bytes,
        head: int,
        tail: bytes,
        source: Path | None,
        start_key: str | None,
        folder: Path,
    ) -> None:
        super().__init__(name="xes-launcher", daemon=True)
        self.jobs, self.data, self.head, self.tail = jobs, data, head, tail
        self.source, self.start_key, self.folder = source, start_key, folder
        self.children: list[_Child] = []
        self.error: BaseException | None = None
        self.cancelled = False

    def run(self) -> None:
        try:
            view = memoryview(self.data)
            for k, (a, b) in enumerate(self.jobs, start=1):
                if self.cancelled:
                    return
                tail = self.tail if b != len(self.data) else b""
                out = self.folder / f"part{k}.out"
                if self.source is not None:
                    child = _Child(self.source, self.head, a, b, tail, self.start_key, out)
                else:
                    part = self.folder / f"part{k}.xes"
                    with part.open("wb") as fh:
                        fh.write(view[: self.head])
                        fh.write(view[a:b])
                    child = _Child(part, 0, 0, self.head + b - a, tail, self.start_key, out)
                self.children.append(child)
        except BaseException as exc:  # noqa: BLE001 - reported to the parsing thread
            self.error = exc


def _series(cols: xes_expat.XesColumns) -> dict[str, pl.Series]:
    return {name: pl.Series(name, getattr(cols, name), dtype=pl.String) for name in xes_expat.COLUMNS}


def parse(
    data: bytes, *, start_key: str | None, parts: int | None = None, source: Path | None = None
) -> ParsedXes | None:
    """Parse a whole XES document in parallel; None means "parse it serially instead".

    ``source``: the plain (uncompressed) file ``data`` was read from; children then read their
    parts from it instead of from temporary copies.
    """
    parts = min(MAX_PARTS, parts or cpu_count())
    if parts < 2 or len(data) < PARALLEL_MIN_BYTES:
        return None
    prolog = _PROLOG.match(data)
    root = _ROOT_TAG.match(data, prolog.end() if prolog else 0)
    if root is None:
        return None  # a DOCTYPE, a self-closing root, UTF-16, or not XML at all
    root_name = root.group(1)
    prefix = root_name.rpartition(b":")[0]
    close_tag = b"</" + (prefix + b":" if prefix else b"") + b"trace"
    cuts = _cuts(data, _shares(parts), close_tag, root.end())
    if not cuts:
        return None
    tail = b"</" + root_name + b">"
    bounds = [*cuts, len(data)]
    with tempfile.TemporaryDirectory(prefix="jl-xes-") as tmp:
        launcher = _Launcher(
            list(itertools.pairwise(bounds)), data, root.end(), tail, source, start_key, Path(tmp)
        )
        launcher.start()
        try:
            first = xes_expat.XesColumns()
            view = memoryview(data)
            step = 1 << 20
            chunks = (bytes(view[i : min(i + step, cuts[0])]) for i in range(0, cuts[0], step))
            try:
                xes_expat.parse(itertools.chain(chunks, [tail]), first, start_key=start_key)
            except (xes_expat.XesRefused, expat.ExpatError, LookupError, ValueError):
                return None  # the serial parser words the error (an unknown encoding raises LookupError)
            columns = _series(first)  # while the children finish
            launcher.join()
            if launcher.error is not None or len(launcher.children) != len(bounds) - 1:
                return None
            raws = [child.result() for child in launcher.children]
        finally:
            launcher.cancelled = True
            launcher.join()
            for child in launcher.children:
                child.kill()
    decoded = []
    for raw in raws:
        if raw is None:
            return None
        answer = _read_answer(raw)
        if answer is None or answer[0]["unnamed_traces"]:
            return None  # unnamed traces are numbered across the whole document: parse serially
        decoded.append(answer)
    for name in xes_expat.COLUMNS:
        columns[name] = pl.concat([columns[name], *(cols[name] for _, cols in decoded)], rechunk=False)
    return ParsedXes(
        columns=columns,
        unnamed_traces=first.unnamed_traces,
        orphan_events=first.orphan_events + sum(h["orphan_events"] for h, _ in decoded),
    )
