"""The streaming XES parser (stdlib expat only), also runnable as a child process.

This module imports nothing but the standard library, so :mod:`xes_parallel` can run it as a
script (``python -I -S xes_expat.py ...`` on one part of a document, see :func:`_main`) without
the cost of importing polars and numpy in the child.

Security: every DTD feature is refused up front (no DOCTYPE, no entity declarations, no external
entities, parameter entities never parsed), the same defence ``defusedxml`` applies, without the
dependency. Expat's DOCTYPE callback refuses the document before any entity is declared, let alone
expanded.
"""

from __future__ import annotations

import json
import struct
import sys
import xml.parsers.expat as expat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

COLUMNS = ("cases", "activities", "timestamps", "starts", "resources", "lifecycles")
# Child output: values joined by NUL, missing values as SOH. XML 1.0 cannot contain either
# character (not even as a character reference), so neither can be mistaken for data.
SEPARATOR = "\x00"
MISSING = "\x01"
EXIT_XML_ERROR = 3


class XesRefused(Exception):
    """Raised inside expat callbacks to abort on forbidden XML constructs."""


class StopParsing(Exception):
    """Raised inside expat callbacks to stop early (previews)."""


def _refuse_doctype(*_args: object) -> None:
    raise XesRefused("DOCTYPE")


def _refuse_entity(*_args: object) -> None:
    raise XesRefused("ENTITY")


def _refuse_external(*_args: object) -> int:
    raise XesRefused("external ENTITY")


def guarded_parser() -> expat.XMLParserType:
    """An expat parser that refuses every DTD feature (DOCTYPE, entities, external references)."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    return parser


@dataclass
class XesColumns:
    """Per-event values (document order) and counts, filled in while parsing."""

    cases: list[str | None] = field(default_factory=list)
    activities: list[str | None] = field(default_factory=list)
    timestamps: list[str | None] = field(default_factory=list)
    starts: list[str | None] = field(default_factory=list)
    resources: list[str | None] = field(default_factory=list)
    lifecycles: list[str | None] = field(default_factory=list)
    unnamed_traces: int = 0
    orphan_events: int = 0
    n_traces: int = 0
    size: int = 0  # bytes parsed


def parse(
    chunks: Iterable[bytes],
    out: XesColumns,
    *,
    start_key: str | None,
    max_events: int | None = None,
) -> XesColumns:
    """Parse an XES document from byte chunks into ``out`` (partial when an error is raised).

    Raises XesRefused for DTD features and expat.ExpatError for malformed XML; stops quietly
    after ``max_events`` events (previews).
    """
    acts_append = out.activities.append
    ts_append = out.timestamps.append
    st_append = out.starts.append
    res_append = out.resources.append
    lc_append = out.lifecycles.append
    cases_extend = out.cases.extend

    parser = guarded_parser()
    parser.buffer_text = True
    parser.ordered_attributes = True  # [k1, v1, k2, v2]: cheaper than a dict per element

    # Parser state kept in closure cells: this runs ~2 callbacks per XML element, so every
    # attribute lookup saved matters. nest = depth below the current <event> (-1: outside one).
    nest = -1
    tnest = -1
    act = ts = st = res = lc = None
    cid: str | None = None
    pending = 0
    n_events = 0
    ev_name = "event"
    tr_name = "trace"

    def key_value(attrs: list[str]) -> tuple[str | None, str | None]:
        """(key, value) of an XES attribute element whatever the attribute order."""
        if len(attrs) >= 4 and attrs[0] == "key" and attrs[2] == "value":
            return attrs[1], attrs[3]
        d = dict(zip(attrs[::2], attrs[1::2], strict=False))
        return d.get("key"), d.get("value")

    def start(name: str, attrs: list[str]) -> None:
        """Element start: remember event / trace attributes at the right depth."""
        nonlocal nest, tnest, act, ts, st, res, lc, cid, pending
        if nest >= 0:
            nest += 1
            if nest == 1:
                k: str | None
                v: str | None
                if len(attrs) >= 4 and attrs[0] == "key" and attrs[2] == "value":
                    k = attrs[1]
                    v = attrs[3]
                else:
                    k, v = key_value(attrs)
                if k == "concept:name":
                    act = v
                elif k == "time:timestamp":
                    ts = v
                elif k == "org:resource":
                    res = v
                elif k == "lifecycle:transition":
                    lc = v
                elif k == start_key and k is not None:
                    st = v
        elif name == ev_name:
            nest = 0
            act = ts = st = res = lc = None
        elif tnest >= 0:
            tnest += 1
            if tnest == 1:
                k, v = key_value(attrs)
                if k == "concept:name":
                    cid = v
        elif name == tr_name:
            tnest = 0
            pending = 0
            cid = None
            out.n_traces += 1

    def end(name: str) -> None:
        """Element end: emit an event, or stamp a finished trace's events with its case id."""
        nonlocal nest, tnest, pending, n_events
        if nest > 0:
            nest -= 1
        elif nest == 0:
            nest = -1
            if tnest < 0:
                out.orphan_events += 1  # an <event> outside any <trace> belongs to no case
                return
            acts_append(act)
            ts_append(ts)
            st_append(st)
            res_append(res)
            lc_append(lc)
            pending += 1
        elif tnest > 0:
            tnest -= 1
        elif tnest == 0:
            tnest = -1
            case_id = cid
            if case_id is None:
                out.unnamed_traces += 1
                case_id = f"(unnamed trace {out.n_traces})"
            cases_extend([case_id] * pending)
            n_events += pending
            if max_events is not None and n_events >= max_events:
                raise StopParsing

    def root(name: str, attrs: list[str]) -> None:
        """Root element: learn the prefix (e.g. <xes:log>), then hand over to ``start``."""
        nonlocal ev_name, tr_name
        prefix = name.rpartition(":")[0]
        if prefix:
            ev_name, tr_name = prefix + ":event", prefix + ":trace"
        parser.StartElementHandler = start

    parser.StartElementHandler = root
    parser.EndElementHandler = end
    try:
        for chunk in chunks:
            out.size += len(chunk)
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except StopParsing:
        pass
    return out


def encode(cols: XesColumns) -> bytes:
    """The child's answer: a JSON header line, then each column as length-prefixed UTF-8."""
    header = {
        "events": len(cols.activities),
        "unnamed_traces": cols.unnamed_traces,
        "orphan_events": cols.orphan_events,
        "n_traces": cols.n_traces,
    }
    parts = [json.dumps(header).encode() + b"\n"]
    for name in COLUMNS:
        values = getattr(cols, name)
        blob = SEPARATOR.join(MISSING if v is None else v for v in values).encode("utf-8")
        parts.append(struct.pack("<Q", len(blob)))
        parts.append(blob)
    return b"".join(parts)


def _ranges(path: str, head: int, start: int, stop: int, tail: bytes) -> Iterator[bytes]:
    """Bytes [0, head) and [start, stop) of a file, then ``tail``, in 1 MiB chunks."""
    step = 1 << 20
    with open(path, "rb") as fh:
        for a, b in ((0, head), (start, stop)):
            fh.seek(a)
            while a < b:
                chunk = fh.read(min(step, b - a))
                if not chunk:
                    break
                a += len(chunk)
                yield chunk
    if tail:
        yield tail


def _main() -> int:
    """Child process: ``xes_expat.py START_KEY OUT SOURCE HEAD START STOP TAIL``.

    Parses bytes [0, HEAD) + [START, STOP) of SOURCE followed by the text TAIL, and writes
    :func:`encode` to OUT. Files rather than pipes: the parent parses its own part meanwhile and
    holds the GIL for long stretches, so threads feeding a pipe would starve the child.
    """
    start_key = sys.argv[1] or None
    out_path, source = sys.argv[2], sys.argv[3]
    head, start, stop = (int(v) for v in sys.argv[4:7])
    tail = sys.argv[7].encode("utf-8")
    try:
        cols = parse(_ranges(source, head, start, stop, tail), XesColumns(), start_key=start_key)
    except (XesRefused, expat.ExpatError, LookupError, ValueError) as exc:  # also an unusable encoding
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return EXIT_XML_ERROR
    with open(out_path, "wb") as fh:
        fh.write(encode(cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
