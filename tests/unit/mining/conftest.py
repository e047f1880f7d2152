"""Fixtures for the mining library tests (pure library: no app, database or Redis needed).

Everything is a fixture or hook (no imports from this file), so the tests work under any pytest
import mode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from worker.mining import ColumnMapping, MiningResult, discover, read_log

# The repo is /work/main locally and somewhere else in CI; shared/ always sits beside it.
SHARED_EVENTLOGS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "eventlogs"
MISSING = "shared-folder-missing"


def _truth_names(csv_only: bool = False) -> list[str]:
    if not SHARED_EVENTLOGS.is_dir():
        return [MISSING]
    names = [p.name.removesuffix(".truth.json") for p in sorted(SHARED_EVENTLOGS.glob("*.truth.json"))]
    return [n for n in names if ".xes" not in n] if csv_only else names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``truth_name`` over every shared log with a truth file (``csv_truth_name``: CSVs)."""
    if "truth_name" in metafunc.fixturenames:
        metafunc.parametrize("truth_name", _truth_names())
    if "csv_truth_name" in metafunc.fixturenames:
        metafunc.parametrize("csv_truth_name", _truth_names(csv_only=True))


def _require_shared() -> Path:
    if not SHARED_EVENTLOGS.is_dir():
        pytest.skip(f"../shared event logs missing ({SHARED_EVENTLOGS}): shared data not beside the checkout")
    return SHARED_EVENTLOGS


@pytest.fixture
def mining_eventlogs() -> Path:
    """Shared event-log folder (skips when missing)."""
    return _require_shared()


@pytest.fixture
def truth(truth_name: str) -> dict[str, Any]:
    """pm4py's ground truth for one shared log."""
    folder = _require_shared()
    return json.loads((folder / f"{truth_name}.truth.json").read_text(encoding="utf-8"))


def _truth_mapping(truth: dict[str, Any]) -> ColumnMapping | None:
    # XES needs no mapping. CSV: the truth's columns, and no start timestamp (the interval CSV
    # truth was computed with that column dropped).
    if ".xes" in truth["file"]:
        return None
    sem = truth["semantics"]
    return ColumnMapping(case=sem["case_id"], activity=sem["activity"], timestamp=sem["timestamp"])


@pytest.fixture
def csv_truth(csv_truth_name: str) -> dict[str, Any]:
    """pm4py's ground truth for one shared CSV log."""
    folder = _require_shared()
    return json.loads((folder / f"{csv_truth_name}.truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def _mined_cache() -> dict[str, MiningResult]:
    return {}


@pytest.fixture
def mined(truth: dict[str, Any], _mined_cache: dict[str, MiningResult]) -> MiningResult:
    """Our figures for the log, read and discovered once per session (bpic2012 takes ~2 s)."""
    name = truth["file"]
    if name not in _mined_cache:
        _mined_cache[name] = discover(read_log(SHARED_EVENTLOGS / name, _truth_mapping(truth)))
    return _mined_cache[name]
