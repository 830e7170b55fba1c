"""Aggregating raw per-round results into medians and zeropipe/pyzmq ratios, and printing them.

Ratios are formed within a round (both implementations ran the case back to back), then the
median over rounds is reported; the per-implementation figure is the median over rounds too.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.cases import METRICS, Case, Metric

Raw = dict[str, Any]
SUBJECT, ANCHOR = "zeropipe", "pyzmq"


def _value(raw: Raw, key: str) -> float | None:
    if not raw["ok"]:
        return None
    value = raw["metrics"].get(key)
    return float(value) if value is not None else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _by_round(raws: list[Raw], impl: str, key: str) -> dict[int, float]:
    values = {r["round"]: _value(r, key) for r in raws if r["impl"] == impl}
    return {rnd: v for rnd, v in values.items() if v is not None}


def summarize_metric(case: Case, metric: Metric, raws: list[Raw], impls: list[str]) -> Raw:
    """Medians per implementation and the median per-round ratio for one metric of one case."""
    mine = [r for r in raws if r["case"] == case.name]
    per_impl = {impl: _by_round(mine, impl, metric.key) for impl in impls}
    secondary = {impl: _by_round(mine, impl, metric.secondary) for impl in impls}
    ratios: list[float] = []
    if SUBJECT in per_impl and ANCHOR in per_impl:
        subject, anchor = per_impl[SUBJECT], per_impl[ANCHOR]
        ratios = [subject[r] / anchor[r] for r in sorted(subject) if anchor.get(r)]
    return {
        "case": case.name,
        "metric": metric.key,
        "label": metric.label,
        "lower_is_better": metric.lower_is_better,
        "median": {impl: _median(list(v.values())) for impl, v in per_impl.items()},
        "secondary": metric.secondary or None,
        "secondary_median": {impl: _median(list(v.values())) for impl, v in secondary.items()},
        "ratios": ratios,
        "ratio_median": _median(ratios),
        "errors": {impl: _errors(mine, impl) for impl in impls},
    }


def _errors(raws: list[Raw], impl: str) -> list[str]:
    return [f"round {r['round']}: {r['error']}" for r in raws if r["impl"] == impl and not r["ok"]]


def summarize(cases: list[Case], raws: list[Raw], impls: list[str]) -> list[Raw]:
    """One summary row per (case, metric)."""
    return [
        summarize_metric(case, metric, raws, impls)
        for case in cases
        for metric in METRICS[case.kind]
    ]


def fmt_number(value: float) -> str:
    """Compact human-readable number: 734.6k, 1.21M, 45.2, 0.231."""
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _cell(row: Raw, impl: str, rounds: int) -> str:
    value = row["median"].get(impl)
    errors = len(row["errors"].get(impl, []))
    if value is None:
        return f"ERROR ({errors}/{rounds})" if errors else "-"
    text = fmt_number(value)
    extra = row["secondary_median"].get(impl)
    if extra is not None:
        text += f" ({fmt_number(extra)} MB/s)"
    return text + (f" [{errors} err]" if errors else "")


def format_table(rows: list[Raw], impls: list[str], rounds: int) -> str:
    """The summary as a fixed-width text table with a header explaining how to read it."""
    header = ["case", "metric", "better", *impls]
    with_ratio = SUBJECT in impls and ANCHOR in impls
    if with_ratio:
        header.append(f"{SUBJECT}/{ANCHOR}")
    lines = [header]
    for row in rows:
        better = "lower" if row["lower_is_better"] else "higher"
        line = [row["case"], row["label"], better, *(_cell(row, i, rounds) for i in impls)]
        if with_ratio:
            ratio = row["ratio_median"]
            line.append("-" if ratio is None else f"{ratio:.3g}x")
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*_legend(rounds, with_ratio), *text])


def _legend(rounds: int, with_ratio: bool) -> list[str]:
    legend = [
        f"Medians over {rounds} round(s). Throughput (msgs/s, MB/s = 10^6 B/s): higher is better;"
        " latency (us), delay (ms) and handshake (ms): LOWER is better.",
    ]
    if with_ratio:
        legend.append(
            f"Ratio = median over rounds of {SUBJECT}/{ANCHOR} from the same round"
            " (>1 means zeropipe's figure is larger: better for throughput, worse otherwise)."
        )
    return [*legend, ""]
