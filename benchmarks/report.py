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


def format_table(rows: Sequence[Row]) -> str:
    """Return `rows` as a Markdown table, with values rounded for reading."""
    lines = [
        "| system | workload | median | min | max | unit | runs |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.system} | {row.workload} | {_format_number(row.value)} | "
            f"{_format_number(row.min)} | {_format_number(row.max)} | {row.unit} | {row.runs} |"
        )
    return "\n".join(lines)


def write_json(path: Path, rows: Sequence[Row]) -> None:
    """Write `rows` to `path` as a JSON list of objects, one per row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")


def _format_number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
