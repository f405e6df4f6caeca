"""Metric results as tables: printed with rich, saved as JSON and CSV beside each other."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from codetool_kernel.files import write_json_atomic


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@dataclass
class MetricTable:
    """A titled table of rows; cells are printed as they are (format numbers before adding them)."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def show(self, console: Console) -> None:
        table = Table(title=self.title)
        for index, column in enumerate(self.columns):
            table.add_column(column, justify="left" if index == 0 else "right")
        for row in self.rows:
            table.add_row(*("-" if cell is None else str(cell) for cell in row))
        console.print(table)

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(["" if cell is None else cell for cell in row] for row in self.rows)
        return buffer.getvalue()


def save_metric(folder: Path, name: str, data: dict[str, Any], table: MetricTable) -> tuple[Path, Path]:
    """Write `<folder>/<name>.json` and `<name>.csv`, each atomically; returns both paths."""
    json_path, csv_path = folder / f"{name}.json", folder / f"{name}.csv"
    write_json_atomic(json_path, data)
    write_text_atomic(csv_path, table.csv_text())
    return json_path, csv_path


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` so that `path` holds either its old content or all of the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
