"""Results: one row per figure with its baseline, written as JSON and as a Markdown table."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Row:
    """One figure of rujuk beside one baseline from the same run. ``ratio`` is rujuk ÷ baseline of the
    primary figure (``unit``): for a rate below 1 means rujuk is slower, for a latency above 1."""

    benchmark: str
    unit: str
    rujuk: float | None
    rujuk_text: str
    baseline: str
    baseline_value: float | None = None
    baseline_text: str = "—"

    @property
    def ratio(self) -> float | None:
        if self.rujuk is None or not self.baseline_value or math.isnan(self.rujuk) or math.isnan(self.baseline_value):
            return None
        return self.rujuk / self.baseline_value


def rate_text(summary: dict[str, Any], unit: str = "req/s") -> str:
    return (f"{summary['per_second']:,.0f} {unit} · p50 {summary['p50_ms']:,.1f} ms · "
            f"p99 {summary['p99_ms']:,.1f} ms")


def latency_text(summary: dict[str, Any]) -> str:
    return f"p50 {summary['p50_ms']:,.1f} ms · p95 {summary['p95_ms']:,.1f} ms ({summary['requests']:,} requests)"


def _clean(value: Any) -> Any:
    """JSON without NaN: NaN (no sample) becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass(slots=True)
class Results:
    meta: dict[str, Any]
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)

    def record(self, name: str, system: str, figures: dict[str, Any]) -> None:
        self.benchmarks.setdefault(name, {})[system] = figures

    def to_json(self) -> dict[str, Any]:
        table = [{**asdict(r), "ratio": r.ratio} for r in self.rows]
        cleaned: dict[str, Any] = _clean({"meta": self.meta, "benchmarks": self.benchmarks, "table": table})
        return cleaned

    def markdown(self) -> str:
        m = self.meta
        lines = [
            f"# rujuk benchmarks, {m['started_at']}",
            "",
            f"Scale {m['scale']} ({m['dataset']['rows'].get('households', 0):,} households, "
            f"{m['dataset']['rows'].get('complaints', 0):,} complaints, "
            f"{m['dataset']['rows'].get('case_events', 0):,} case events); {m['duration']} s per figure after "
            f"{m['warmup']} s warm-up; {m['clients']} clients; {m['machine']}.",
            "",
            "| benchmark | rujuk figure | baseline | baseline figure | ratio |",
            "|---|---|---|---|---|",
        ]
        for r in self.rows:
            ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "—"
            lines.append(f"| {r.benchmark} | {r.rujuk_text} | {r.baseline} | {r.baseline_text} | {ratio} |")
        lines += ["", "Ratio = rujuk ÷ baseline of the first figure: for rates (req/s, rows/s) below 1 means "
                  "rujuk is slower; for latencies above 1 means rujuk is slower.", ""]
        return "\n".join(lines)

    def write(self, directory: Path, stamp: str) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{stamp}.json"
        path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        markdown = self.markdown()
        (directory / f"{stamp}.md").write_text(markdown)
        (directory / "latest.md").write_text(markdown)
        return path
