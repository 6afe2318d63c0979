"""ProfileReport: totals, per-group and per-layer rows, as dict/JSON, CSV and a rich table."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

SUMMED = ("params", "nonzero_params", "macs", "effective_macs", "flops", "activation_bytes")


@dataclass
class ProfileReport:
    """Result of `profile()`: `total`, `groups` and `layers` (plain dicts, JSON-ready)."""

    total: dict
    groups: list[dict] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        layers: list[dict],
        *,
        params: int,
        nonzero_params: int,
        latency_ms: float | None,
        batch_size: int,
        input_shape: list[int],
    ) -> ProfileReport:
        total = {key: sum(row[key] for row in layers) for key in SUMMED}
        total.update(
            params=params,
            nonzero_params=nonzero_params,
            formula_params=sum(row["formula_params"] or 0 for row in layers),
            latency_ms=latency_ms,
            batch_size=batch_size,
            input_shape=input_shape,
            conventions="macs: multiply-accumulates per sample; flops: seed 000 eq. (3)/(4) per sample",
        )
        groups: dict[str, dict] = {}
        for row in layers:
            group = groups.setdefault(
                row["group"],
                {"name": row["group"], "layers": 0, **dict.fromkeys(SUMMED, 0), "latency_ms": None},
            )
            group["layers"] += 1
            for key in SUMMED:
                group[key] += row[key]
            if row.get("latency_ms") is not None:
                group["latency_ms"] = (group["latency_ms"] or 0.0) + row["latency_ms"]
        for group in groups.values():
            for key in ("params", "macs", "flops"):
                group[f"{key}_share"] = group[key] / total[key] if total[key] else 0.0
        return cls(total=total, groups=list(groups.values()), layers=layers)

    def to_dict(self) -> dict:
        return {"total": self.total, "groups": self.groups, "layers": self.layers}

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per layer to `path`."""
        path = Path(path)
        keys = list(self.layers[0].keys()) if self.layers else ["name"]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.layers)
        return path

    def table(self, title: str = "Profile (per module group, seed 000 Table I)") -> Table:
        """A rich table of the groups plus the total."""
        table = Table(title=title)
        for column in ("group", "layers", "params", "nonzero", "MACs", "FLOPs", "act. KB", "latency ms"):
            table.add_column(column, justify="left" if column == "group" else "right")
        for group in self.groups:
            table.add_row(*_cells(group, f"{group['layers']}"))
        table.add_row(*_cells({**self.total, "name": "TOTAL"}, str(len(self.layers))), style="bold")
        return table


def _cells(row: dict, layers: str) -> list[str]:
    latency = row.get("latency_ms")
    share = f" ({100 * row['params_share']:.1f}%)" if "params_share" in row else ""
    return [
        row["name"],
        layers,
        f"{row['params']:,}{share}",
        f"{row['nonzero_params']:,}",
        _si(row["macs"]),
        _si(row["flops"]),
        f"{row['activation_bytes'] / 1024:.1f}",
        "-" if latency is None else f"{latency:.3f}",
    ]


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"
