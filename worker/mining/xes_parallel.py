"""Parse a large XES document on several cores: the expat parser of :mod:`xes_expat` per part.

Expat calls back into Python for every XML element, so one core parses ~50 MB of XES a second
however the callbacks are written (profiling showed the bare callback machinery, with empty
handlers, costs two thirds of it). The document is therefore cut after ``</trace>`` tags into as
many parts as there are cores (at most ``MAX_PARTS``); this process parses the first part while
child processes parse the others. A child is ``python -I -S xes_expat.py`` reading its part on
stdin: standard library only, so it starts in milliseconds; it answers with its columns joined by
NUL characters, which polars splits back into series without a Python loop.

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


def _cuts(data: bytes, parts: int, close_tag: bytes, start: int) -> list[int]:
    """Offsets just after a ``</trace>`` near each 1/parts of the body (fewer if none is found)."""
    cuts: list[int] = []
    body = len(data) - start
    for k in range(1, parts):
        at = data.find(close_tag, start + body * k // parts)
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
    """One child parser working on a part written to a temporary file."""

    def __init__(self, pieces: list[bytes | memoryview], start_key: str | None, folder: Path, k: int) -> None:
        self.source = folder / f"part{k}.xes"
        self.target = folder / f"part{k}.out"
        with self.source.open("wb") as fh:
            for piece in pieces:
                fh.write(piece)
        self.size = self.source.stat().st_size
        self.proc = subprocess.Popen(  # noqa: S603 - our own script, run by this interpreter
            [sys.executable, "-I", "-S", str(_CHILD_SCRIPT)]
            + [start_key or "", str(self.source), str(self.target)],
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
        if code != 0:
            return None
        return self.target.read_bytes()

    def kill(self) -> None:
        """Stop the child (idempotent) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _parse_first(
    view: memoryview, cut: int, tail: bytes, start_key: str | None, children: list[_Child]
) -> tuple[xes_expat.XesColumns, list[bytes | None]] | None:
    """Parse the first part here while the children work; then collect their answers."""
    first = xes_expat.XesColumns()
    step = 1 << 20
    chunks = (bytes(view[i : min(i + step, cut)]) for i in range(0, cut, step))
    try:
        xes_expat.parse(itertools.chain(chunks, [tail]), first, start_key=start_key)
    except (xes_expat.XesRefused, expat.ExpatError):
        return None
    return first, [child.result() for child in children]


def parse(data: bytes, *, start_key: str | None, parts: int | None = None) -> ParsedXes | None:
    """Parse a whole XES document in parallel; None means "parse it serially instead"."""
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
    cuts = _cuts(data, parts, close_tag, root.end())
    if not cuts:
        return None
    head = data[: root.end()]
    tail = b"</" + root_name + b">"
    view = memoryview(data)
    bounds = [*cuts, len(data)]
    children: list[_Child] = []
    with tempfile.TemporaryDirectory(prefix="jl-xes-") as tmp:
        try:
            for k, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False), start=1):
                pieces: list[bytes | memoryview] = [head, view[a:b]]
                if b != len(data):
                    pieces.append(tail)
                children.append(_Child(pieces, start_key, Path(tmp), k))
            answers = _parse_first(view, cuts[0], tail, start_key, children)
        finally:
            for child in children:
                child.kill()
    if answers is None:
        return None
    first, raws = answers
    decoded = []
    for raw in raws:
        if raw is None:
            return None
        answer = _read_answer(raw)
        if answer is None or answer[0]["unnamed_traces"]:
            return None  # unnamed traces are numbered across the whole document: parse serially
        decoded.append(answer)
    columns: dict[str, pl.Series] = {}
    for name in xes_expat.COLUMNS:
        series = [pl.Series(name, getattr(first, name), dtype=pl.String)]
        series += [cols[name] for _, cols in decoded]
        columns[name] = pl.concat(series, rechunk=True)
    return ParsedXes(
        columns=columns,
        unnamed_traces=first.unnamed_traces,
        orphan_events=first.orphan_events + sum(h["orphan_events"] for h, _ in decoded),
    )
