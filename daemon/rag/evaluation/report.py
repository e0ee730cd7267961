"""The evaluation report: ``eval.json`` (read by the success report), ``eval.md`` for a
person, and ``eval_distances.png``, the two distributions of top-hit distances."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from daemon.core import atomic

METRICS = (
    ("hit_at_1", "hit@1"),
    ("hit_at_5", "hit@5"),
    ("mrr_at_10", "MRR@10"),
    ("ndcg_at_10", "nDCG@10"),
    ("top_within_threshold", "top hit within threshold"),
    ("precision_within_threshold", "precision of those"),
    ("redundancy", "redundancy (top 5, lower is better)"),
    ("queries_with_redundant_results", "queries with a near-duplicate in the top 5"),
    ("median_top_distance", "median top-hit distance"),
)


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def render_markdown(report: dict[str, Any], chart: str | None) -> str:
    r, b = report["refined"], report["baseline"]
    lines = [
        "# Retrieval evaluation: refined index vs baseline",
        "",
        f"At {report['at']}. {report['summary']}",
        "",
        f"- refined: {r['pairs']} pairs (active, duplicates folded, quality >="
        f" {report['min_quality']:g})",
        f"- baseline: {b['pairs']} pairs (every imported pair with stored vectors)",
        f"- queries: {report['queries']['count']} ({report['queries']['builtin']} built-in"
        f" from the catalog, {report['queries']['user']} from"
        f" {report['queries']['file'] or 'no user file'}); relevance at indicator level",
        f"- distance threshold {report['threshold']}; near-duplicate: cosine >="
        f" {report['duplicate_threshold']} or the same normalised text",
        "",
        "| metric | refined | baseline |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {_cell(r.get(key))} | {_cell(b.get(key))} |" for key, label in METRICS]
    sig = report["significance"]
    lines += [
        "",
        f"Improved: **{'yes' if report['improved'] else 'no'}**; significantly:"
        f" **{'yes' if report['significantly_improved'] else 'no'}**. {report['rule']}",
        "",
        f"- hit@5 per query: refined finds, baseline misses {sig['hit_at_5']['wins']}; the"
        f" reverse {sig['hit_at_5']['losses']}; p = {sig['hit_at_5']['p']:.4g}",
        f"- redundancy per query: refined lower {sig['redundancy']['wins']}; higher"
        f" {sig['redundancy']['losses']}; p = {sig['redundancy']['p']:.4g}",
    ]
    if chart:
        lines += ["", f"![top-hit distance distributions]({chart})"]
    if report["misses"]:
        lines += ["", "## Queries the refined index misses at 5 (first 25)", ""]
        lines += [
            f"- {m['query']!r}: expected {', '.join(m['expected']) or 'given pairs'},"
            f" top hit {m['got']}"
            for m in report["misses"]
        ]
    return "\n".join(lines) + "\n"


def render_chart(report: dict[str, Any]) -> bytes:
    """Histograms of the top-hit distance of each side, with the threshold marked."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never a display
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.subplots()
    bins = [i * 0.05 for i in range(0, 25)]
    for name, colour in (("baseline", "#c44e52"), ("refined", "#4c72b0")):
        values = report["top_distances"][name]
        axes.hist(values, bins=bins, alpha=0.55, color=colour, label=f"{name} ({len(values)})")
    axes.axvline(report["threshold"], color="black", linestyle="--", label="threshold")
    axes.set_xlabel("cosine distance of the top hit")
    axes.set_ylabel("queries")
    axes.set_title("Top-hit distance: refined index vs baseline")
    axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_reports(report: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Write eval.json, eval.md and eval_distances.png atomically; returns their paths."""
    paths = {
        "json": folder / "eval.json",
        "markdown": folder / "eval.md",
        "chart": folder / "eval_distances.png",
    }
    atomic.write_bytes(paths["chart"], render_chart(report))
    atomic.write_text(paths["markdown"], render_markdown(report, paths["chart"].name))
    atomic.write_text(paths["json"], json.dumps(report, indent=2) + "\n")
    return paths
