"""Summary rows of repeated runs, printed as a table or written as JSON."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.workloads import Measurement


@dataclass(frozen=True)
class Row:
    """The median, min and max of one metric of one system over `runs` runs."""

    system: str
    workload: str
    value: float
    unit: str
    runs: int
    min: float
    max: float


def summarize(system: str, runs: Sequence[Sequence[Measurement]]) -> list[Row]:
    """Combine the measurements of repeated runs of one workload into one row per metric."""
    values: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for measurements in runs:
        for measurement in measurements:
            values.setdefault(measurement.metric, []).append(measurement.value)
            units[measurement.metric] = measurement.unit

    return [
        Row(
            system=system,
            workload=metric,
            value=statistics.median(metric_values),
            unit=units[metric],
            runs=len(metric_values),
            min=min(metric_values),
            max=max(metric_values),
        )
        for metric, metric_values in values.items()
    ]


def order_by_workload(rows: Sequence[Row], systems: Sequence[str]) -> list[Row]:
    """Return `rows` grouped by workload, in first-seen order, and by `systems` within each."""
    workloads = list(dict.fromkeys(row.workload for row in rows))
    return sorted(rows, key=lambda row: (workloads.index(row.workload), systems.index(row.system)))


def format_table(rows: Sequence[Row], baseline: str | None = None) -> str:
    """Return `rows` as a Markdown table, with values rounded for reading.

    With a `baseline` system, a last column gives each median divided by the baseline's
    median for the same workload, where both are positive.
    """
    baseline_values = {row.workload: row.value for row in rows if row.system == baseline}
    header = "| system | workload | median | min | max | unit | runs |"
    separator = "| --- | --- | ---: | ---: | ---: | --- | ---: |"
    if baseline is not None:
        header += f" ratio to {baseline} |"
        separator += " ---: |"
    lines = [header, separator]
    for row in rows:
        line = (
            f"| {row.system} | {row.workload} | {_format_number(row.value)} | "
            f"{_format_number(row.min)} | {_format_number(row.max)} | {row.unit} | {row.runs} |"
        )
        if baseline is not None:
            line += f" {_format_ratio(row.value, baseline_values.get(row.workload))} |"
        lines.append(line)
    return "\n".join(lines)


def write_json(path: Path, rows: Sequence[Row]) -> None:
    """Write `rows` to `path` as a JSON list of objects, one per row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")


def _format_ratio(value: float, baseline_value: float | None) -> str:
    if baseline_value is None or baseline_value <= 0 or value <= 0:
        return ""
    ratio = value / baseline_value
    return f"{ratio:.2f}" if ratio < 10 else f"{ratio:.1f}"


def _format_number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
