"""ProfileReport: totals, per-group and per-layer rows, as dict/JSON, CSV and a rich table."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from prunequant.timing import ThreadPlan, Timing

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
        latency: Timing | None,
        threads: ThreadPlan | None,
        other_latency_ms: float | None,
        batch_size: int,
        input_shape: list[int],
    ) -> ProfileReport:
        total = {key: sum(row[key] for row in layers) for key in SUMMED}
        total.update(
            params=params,
            nonzero_params=nonzero_params,
            formula_params=sum(row["formula_params"] or 0 for row in layers),
            **_latency_fields(latency, threads, other_latency_ms),
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
        if self.total.get("other_latency_ms") is not None:
            other = f"{self.total['other_latency_ms']:.3f}"
            table.add_row("(outside modules)", *[""] * 6, other)
        table.add_row(*_cells({**self.total, "name": "TOTAL"}, str(len(self.layers))), style="bold")
        latency = self.total.get("latency_ms")
        if latency is not None:
            noisy = " NOISY" if self.total["latency_noisy"] else ""
            table.caption = (
                f"TOTAL latency: median {latency:.3f} ms (p10-p90 {self.total['latency_p10_ms']:.3f}-"
                f"{self.total['latency_p90_ms']:.3f}) at {self.total['latency_threads']['used']} thread(s)"
                f"{noisy}; layer latencies are their share of TOTAL, '(outside modules)' holds functional "
                "ops and Python glue"
            )
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


def _latency_fields(latency: Timing | None, threads: ThreadPlan | None, other_ms: float | None) -> dict:
    """TOTAL latency (median, p10, p90), its noisy flag and threads, and the time outside modules."""
    if latency is None:
        return {"latency_ms": None}
    return {
        "latency_ms": latency.median_ms,
        "latency_p10_ms": latency.p10_ms,
        "latency_p90_ms": latency.p90_ms,
        "latency_noisy": latency.noisy,
        "latency_threads": threads.to_dict() if threads else None,
        "other_latency_ms": other_ms,
    }
