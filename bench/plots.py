"""PNG figures of bench/compare.py's and bench/scale.py's raw results, for docs/performance.md.

    .venv/bin/python -m bench.plots [--bench-dir docs/bench]

- ``compare-throughput.png``: ops/s against clients in flight (1, 16, 64), one panel per operation, one
  line per system (raw etcd, ARC direct, ARC through the aggregator, CRDs in kube-apiserver);
- ``compare-latency-cdf.png``: latency CDFs at 64 in flight, one panel per operation (log-scale ms);
- ``compare-cpu.png``: server CPU seconds per 1,000 operations at 64 in flight, stacked by process;
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

SYSTEMS = ("raw-etcd", "arc-direct", "arc-aggregated", "crd")
LABELS = {
    "raw-etcd": "raw etcd (aetcd)",
    "arc-direct": "ARC direct",
    "arc-aggregated": "ARC via aggregator",
    "crd": "CRD in kube-apiserver",
}
COLORS = {"raw-etcd": "#7f7f7f", "arc-direct": "#1f77b4", "arc-aggregated": "#17becf", "crd": "#d62728"}
OPERATIONS = ("create", "get", "update", "patch")
SERVERS = ("arc-apiserver-direct", "arc-apiserver", "kube-apiserver", "etcd-arc", "etcd")


def throughput(compare: dict[str, Any], out: Path) -> None:
    fig, axes = plt.subplots(1, len(OPERATIONS), figsize=(16, 4), sharey=True)
    for ax, op in zip(axes, OPERATIONS, strict=True):
        for system in SYSTEMS:
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
    fig.suptitle(f"Throughput vs concurrency (bench/compare, {compare['mode']} mode, {compare['date']})")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def latency_cdf(compare: dict[str, Any], out: Path, concurrency: int = 64) -> None:
    fig, axes = plt.subplots(1, len(OPERATIONS) + 1, figsize=(19, 4), sharey=True)
    for ax, op in zip(axes, OPERATIONS, strict=False):
        for system in SYSTEMS:
            runs = [
                r
                for r in compare["runs"]
                if r["system"] == system and r["operation"] == op and r["concurrency"] == concurrency
            ]
            if runs and runs[0].get("quantiles_ms"):
                q = runs[0]["quantiles_ms"][:101]
                ax.plot(q, [i / 100 for i in range(len(q))], label=LABELS[system], color=COLORS[system])
        ax.set_title(f"{op} @ {concurrency}")
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms)")
        ax.grid(True, which="both", alpha=0.3)
    watch_ax = axes[-1]
    for system in SYSTEMS:
        q = compare.get("watch", {}).get(system, {}).get("quantiles_ms", [])[:101]
        if q:
            watch_ax.plot(q, [i / 100 for i in range(len(q))], label=LABELS[system], color=COLORS[system])
    watch_ax.set_title("watch event (create start → event)")
    watch_ax.set_xscale("log")
    watch_ax.set_xlabel("latency (ms)")
    watch_ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("fraction of operations")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Latency CDFs (bench/compare)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def cpu(compare: dict[str, Any], out: Path, concurrency: int = 64) -> None:
    fig, axes = plt.subplots(1, len(OPERATIONS), figsize=(16, 4), sharey=True)
    palette = {
        "arc-apiserver-direct": "#1f77b4",
        "arc-apiserver": "#17becf",
        "kube-apiserver": "#d62728",
        "etcd-arc": "#2ca02c",
        "etcd": "#98df8a",
    }
    for ax, op in zip(axes, OPERATIONS, strict=True):
        bottoms = [0.0] * len(SYSTEMS)
        for server in SERVERS:
            values = []
            for system in SYSTEMS:
                runs = [
                    r
                    for r in compare["runs"]
                    if r["system"] == system and r["operation"] == op and r["concurrency"] == concurrency
                ]
                values.append(runs[0]["cpu_s_per_1k_ops"].get(server, 0.0) if runs else 0.0)
            ax.bar(range(len(SYSTEMS)), values, bottom=bottoms, label=server, color=palette[server])
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        ax.set_xticks(range(len(SYSTEMS)), [LABELS[s].replace(" ", "\n", 1) for s in SYSTEMS], fontsize=7)
        ax.set_title(f"{op} @ {concurrency}")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("server CPU s per 1,000 operations")
    axes[0].legend(fontsize=7)
    fig.suptitle("Server CPU per operation, by process (bench/compare)")
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
    compare_json = d / "compare.json"
    if compare_json.exists():
        compare = json.loads(compare_json.read_text())
        throughput(compare, d / "compare-throughput.png")
        latency_cdf(compare, d / "compare-latency-cdf.png")
        cpu(compare, d / "compare-cpu.png")
        written += ["compare-throughput.png", "compare-latency-cdf.png", "compare-cpu.png"]
    for scale_json in sorted(d.glob("scale*.json")):  # scale.json (quick), scale-1m.json (full), ...
        scale(json.loads(scale_json.read_text()), scale_json.with_suffix(".png"))
        written.append(scale_json.with_suffix(".png").name)
    print(f"[bench] plots in {d}: {', '.join(written) or 'none (no results)'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
