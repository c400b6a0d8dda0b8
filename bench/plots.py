"""PNG figures of bench/compare.py's and bench/scale.py's raw results, for docs/performance.md.

    .venv/bin/python -m bench.plots [--bench-dir docs/bench]

For each result of bench/compare that ``make bench`` writes (``compare.json``, ``compare-workers2.json``),
with the systems and operations it measured:

- ``<stem>-throughput.png``: ops/s against clients in flight (1, 16, 64), one panel per operation, one
  line per system (raw etcd, ARC direct, ARC through the aggregator over HTTP/1.1 and over h2, CRDs in
  kube-apiserver);
- ``<stem>-latency-cdf.png``: latency CDFs at 64 in flight, one panel per operation (log-scale ms);
- ``<stem>-cpu.png``: server CPU seconds per 1,000 operations at 64 in flight, stacked by process;
- ``scale.png``: API server RSS and etcd database size against Orders stored (ARC and CRD), and the create
  rate over the run.

A figure whose input JSON is missing is skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SYSTEMS = ("raw-etcd", "arc-direct", "arc-aggregated", "arc-aggregated-h2", "crd")
LABELS = {
    "raw-etcd": "raw etcd (aetcd)",
    "arc-direct": "ARC direct",
    "arc-aggregated": "ARC via aggregator",
    "arc-aggregated-h2": "ARC via aggregator, h2",
    "crd": "CRD in kube-apiserver",
}
COLORS = {
    "raw-etcd": "#7f7f7f",
    "arc-direct": "#1f77b4",
    "arc-aggregated": "#17becf",
    "arc-aggregated-h2": "#9467bd",
    "crd": "#d62728",
}
OPERATIONS = ("create", "get", "update", "patch", "apply")
SERVERS = ("arc-apiserver-direct", "arc-apiserver", "arc-h2-terminator", "kube-apiserver", "etcd-arc", "etcd")
#: The results ``make bench`` writes; each gets ``<stem>-throughput.png``, ``-latency-cdf.png``, ``-cpu.png``.
COMPARE_RESULTS = ("compare", "compare-workers2")


def systems_of(compare: dict[str, Any]) -> list[str]:
    """The systems a run measured, in plotting order."""
    measured = {r["system"] for r in compare["runs"]}
    return [s for s in SYSTEMS if s in measured]


def operations_of(compare: dict[str, Any]) -> list[str]:
    measured = {r["operation"] for r in compare["runs"]}
    return [op for op in OPERATIONS if op in measured]


def subtitle(compare: dict[str, Any]) -> str:
    workers = compare.get("arc_workers", 1)
    workers_note = f", ARC --workers {workers}" if workers > 1 else ""
    return f"{compare['mode']} mode, {compare['date']}{workers_note}"


def throughput(compare: dict[str, Any], out: Path) -> None:
    systems, operations = systems_of(compare), operations_of(compare)
    fig, axes = plt.subplots(1, len(operations), figsize=(3.6 * len(operations), 4), sharey=True)
    for ax, op in zip(axes, operations, strict=True):
        for system in systems:
            runs = sorted(
                (r for r in compare["runs"] if r["system"] == system and r["operation"] == op),
                key=lambda r: r["concurrency"],
            )
            ax.plot(
                [r["concurrency"] for r in runs],
                [r["ops_per_second"] for r in runs],
                marker="o",
                label=LABELS[system],
                color=COLORS[system],
            )
        ax.set_title(op)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks([1, 16, 64], ["1", "16", "64"])
        ax.set_xlabel("clients in flight")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("operations / s")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Throughput vs concurrency (bench/compare, {subtitle(compare)})")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _at(compare: dict[str, Any], system: str, op: str, concurrency: int) -> dict[str, Any] | None:
    for r in compare["runs"]:
        if r["system"] == system and r["operation"] == op and r["concurrency"] == concurrency:
            return dict(r)
    return None


def latency_cdf(compare: dict[str, Any], out: Path, concurrency: int = 64) -> None:
    systems, operations = systems_of(compare), operations_of(compare)
    fig, axes = plt.subplots(1, len(operations) + 1, figsize=(3.6 * (len(operations) + 1), 4), sharey=True)
    for ax, op in zip(axes, operations, strict=False):
        for system in systems:
            run = _at(compare, system, op, concurrency)
            if run and run.get("quantiles_ms"):
                q = run["quantiles_ms"][:101]
                ax.plot(q, [i / 100 for i in range(len(q))], label=LABELS[system], color=COLORS[system])
        ax.set_title(f"{op} @ {concurrency}")
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms)")
        ax.grid(True, which="both", alpha=0.3)
    watch_ax = axes[-1]
    for system in systems:
        q = compare.get("watch", {}).get(system, {}).get("quantiles_ms", [])[:101]
        if q:
            watch_ax.plot(q, [i / 100 for i in range(len(q))], label=LABELS[system], color=COLORS[system])
    watch_ax.set_title("watch event (create start → event)")
    watch_ax.set_xscale("log")
    watch_ax.set_xlabel("latency (ms)")
    watch_ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("fraction of operations")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Latency CDFs (bench/compare, {subtitle(compare)})")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def cpu(compare: dict[str, Any], out: Path, concurrency: int = 64) -> None:
    systems, operations = systems_of(compare), operations_of(compare)
    fig, axes = plt.subplots(1, len(operations), figsize=(3.6 * len(operations), 4), sharey=True)
    palette = {
        "arc-apiserver-direct": "#1f77b4",
        "arc-apiserver": "#17becf",
        "arc-h2-terminator": "#9467bd",
        "kube-apiserver": "#d62728",
        "etcd-arc": "#2ca02c",
        "etcd": "#98df8a",
    }
    for ax, op in zip(axes, operations, strict=True):
        bottoms = [0.0] * len(systems)
        for server in SERVERS:
            values = []
            for system in systems:
                run = _at(compare, system, op, concurrency)
                values.append(run["cpu_s_per_1k_ops"].get(server, 0.0) if run else 0.0)
            if any(values):
                ax.bar(range(len(systems)), values, bottom=bottoms, label=server, color=palette[server])
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        ax.set_xticks(range(len(systems)), [LABELS[s].replace(" ", "\n", 1) for s in systems], fontsize=7)
        ax.set_title(f"{op} @ {concurrency}")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("server CPU s per 1,000 operations")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Server CPU per operation, by process (bench/compare, {subtitle(compare)})")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def stored_label(data: dict[str, Any]) -> str:
    """What the run stored: ``N Orders in ARC`` and/or ``M CRD Orders``."""
    parts = [
        f"{data[side]['orders']:,} {what}"
        for side, what in (("arc", "Orders in ARC"), ("crd", "CRD Orders"))
        if side in data
    ]
    return " / ".join(parts) or "nothing stored"


def scale(data: dict[str, Any], out: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    rss_ax, db_ax, rate_ax = axes
    sides = (
        ("arc", "arc-apiserver", "ARC API server", "#1f77b4"),
        ("crd", "kube-apiserver", "kube-apiserver (CRD)", "#d62728"),
    )
    for side, process, label, color in sides:
        samples = [s for s in data.get(side, {}).get("samples", []) if s["phase"] in ("warm-up", "create")]
        if not samples:
            continue
        stored = [s["stored"] for s in samples]
        rss_ax.plot(stored, [s[f"{process}_rss_mb"] for s in samples], label=label, color=color)
        rss_ax.plot(stored, [s["etcd_rss_mb"] for s in samples], label="its etcd", color=color, linestyle=":")
        db = [
            (s["stored"], s.get("db_total_mb"), s.get("db_in_use_mb"))
            for s in samples
            if s.get("db_total_mb")
        ]
        db_ax.plot([d[0] for d in db], [d[1] for d in db], label=f"{label}: etcd DB size", color=color)
        db_ax.plot([d[0] for d in db], [d[2] for d in db], label="in use", color=color, linestyle="--")
        rate_ax.plot(
            [s["t"] for s in samples], [s["creates_per_s"] for s in samples], label=label, color=color
        )
    rss_ax.set_title("RSS while Orders are stored")
    rss_ax.set_xlabel("Orders stored")
    rss_ax.set_ylabel("MB")
    rss_ax.legend(fontsize=8)
    db_ax.set_title("etcd database size (ARC's etcd holds only ARC)")
    db_ax.set_xlabel("Orders stored")
    db_ax.set_ylabel("MB")
    db_ax.legend(fontsize=7)
    rate_ax.set_title("create rate (64 in flight)")
    rate_ax.set_xlabel("seconds since the first create")
    rate_ax.set_ylabel("creates / s")
    rate_ax.legend(fontsize=8)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Scale (bench/scale, {stored_label(data)}, {data['date']})")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bench-dir", type=Path, default=Path("docs/bench"))
    args = parser.parse_args(argv)
    d: Path = args.bench_dir
    written = []
    for stem in COMPARE_RESULTS:
        compare_json = d / f"{stem}.json"
        if not compare_json.exists():
            continue
        compare = json.loads(compare_json.read_text())
        for figure, draw in (("throughput", throughput), ("latency-cdf", latency_cdf), ("cpu", cpu)):
            draw(compare, d / f"{stem}-{figure}.png")
            written.append(f"{stem}-{figure}.png")
    for scale_json in sorted(d.glob("scale*.json")):  # scale.json (quick), scale-1m.json (full), ...
        scale(json.loads(scale_json.read_text()), scale_json.with_suffix(".png"))
        written.append(scale_json.with_suffix(".png").name)
    print(f"[bench] plots in {d}: {', '.join(written) or 'none (no results)'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
