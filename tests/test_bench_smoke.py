"""The benchmark harness (``python -m bench.run``) end to end at the tiniest scale and for a second per
figure: it loads the dataset into a fresh database, runs every benchmark against real servers and writes
its results. Only that every figure was produced is checked, never how fast anything was."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.servers import postgraphile_missing
from tests.support.servers import ROOT

pytestmark = pytest.mark.e2e

RUJUK = ("rujuk, 1 worker", "rujuk, 2 workers")
POSTGRAPHILE = "PostGraphile 5 (1 Node process)"
SQL = "plain SQL via asyncpg"
ALONE = "its SQL, one filing per transaction"
UNORDERED = "its SQL, one filing per transaction, without the event-order lock"


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def measured(figures: dict[str, Any]) -> bool:
    """Whether one system's figures of one benchmark are numbers from requests that succeeded."""
    if "per_second" in figures:
        return figures["requests"] > 0 and all(number(figures[k]) for k in ("per_second", "p50_ms", "p99_ms"))
    if "rows_per_second" in figures:
        return figures["rows"] > 0 and number(figures["rows_per_second"])
    latency = figures.get("after_created_at") or {}
    return latency.get("deliveries", 0) > 0 and number(latency.get("p50_ms")) and number(latency.get("p99_ms"))


def test_every_benchmark_produces_figures(fresh_database_url: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--database-url", fresh_database_url, "--scale", "0.001",
         "--duration", "0.5", "--warmup", "0.1", "--clients", "4", "--lookup-clients", "2", "--fanout-sockets", "10,12",
         "--fanout-rate", "20", "--dataset-workers", "0", "--results-dir", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-5000:]

    [path] = results.glob("*.json")
    assert path.with_suffix(".md").is_file() and (results / "latest.md").is_file()
    benchmarks = json.loads(path.read_text())["benchmarks"]
    expected = {
        "intake": (*RUJUK, POSTGRAPHILE, SQL, ALONE, UNORDERED), "nested_page": (*RUJUK, POSTGRAPHILE, SQL),
        "fanout": (*(f"{r}, {n} consoles" for n in (10, 12) for r in RUJUK), SQL),
        "nik_lookup": (RUJUK[0], SQL), "workload": (RUJUK[0], SQL),
        "pull_changes": (RUJUK[0], SQL), "pull_complaints": (RUJUK[0], SQL), "pull_export": (RUJUK[0], SQL),
    }
    assert set(benchmarks) == set(expected)
    missing_node = postgraphile_missing()
    for name, systems in expected.items():
        for system in systems:
            figures = benchmarks[name][system]
            if system == POSTGRAPHILE and missing_node is not None:
                assert figures == {"skipped": missing_node}
                continue
            assert measured(figures), (name, system, figures)
    for name in ("intake", "nested_page"):  # how the two workers shared the clients' connections
        spread = benchmarks[name][RUJUK[1]]["client_connections_per_worker"]
        assert len(spread) == 2 and all(isinstance(n, int) for n in spread) and sum(spread) > 0, spread
    for system in RUJUK:
        for n in (10, 12):  # each number of consoles on a server of its own
            assert number(benchmarks["fanout"][f"{system}, {n} consoles"]["rss_per_subscription_kib"])
            assert benchmarks["fanout"][f"{system}, {n} consoles"]["sockets"] == n
