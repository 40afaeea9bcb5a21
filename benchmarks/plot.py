"""The look-up latency plot: median latency against history length, log-log."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from benchmarks.results import LABELS, Results

REFERENCE = ((100, 0.6), (1_000, 4.5), (5_000, 46.0))
"""The Rust reference adapter's ``message_receipt`` as the issue measured it (records, ms)."""

STYLES = {
    "sqlite": {"color": "tab:blue", "marker": "o"},
    "postgresql": {"color": "tab:green", "marker": "s"},
    "memory": {"color": "tab:gray", "marker": "^"},
    "replay-sqlite": {"color": "tab:red", "marker": "o", "linestyle": "--"},
    "replay-postgresql": {"color": "tab:orange", "marker": "s", "linestyle": "--"},
}
PANELS = (("message_receipt", "message_receipt"), ("snapshot", "snapshot"))


def plot_lookups(results: Results, path: Path) -> None:
    """Write the PNG: one panel per operation, ours vs the replay baseline."""
    figure, axes = plt.subplots(1, len(PANELS), figsize=(11, 5.2), sharey=True)
    for axis, (operation, title) in zip(axes, PANELS, strict=True):
        for backend, style in STYLES.items():
            points = sorted(
                (r.size, r.stats.median_ms)
                for r in results.lookups
                if r.backend == backend and r.operation == operation and r.stats is not None
            )
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, label=LABELS[backend], **style)
        if operation == "message_receipt":
            xs, ys = zip(*REFERENCE, strict=True)
            axis.plot(xs, ys, "x:", color="black", label="Rust reference adapter (issue)")
        skipped = sorted(
            {
                r.size
                for r in results.lookups
                if r.operation == operation and r.stats is None and r.backend.startswith("replay")
            }
        )
        if skipped:
            sizes = ", ".join(f"{size:,}" for size in skipped)
            limit = results.settings["replay_limit"]
            axis.annotate(
                f"replay not run at {sizes} records\n(one call > {limit:g} s)",
                xy=(0.98, 0.3),
                xycoords="axes fraction",
                ha="right",
                va="center",
                fontsize="small",
            )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(title)
        axis.set_xlabel("records in the pool's history")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("median latency (ms)")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize="small")
    figure.suptitle(f"Latency vs history length ({results.mode} run)")
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
