"""Case 9: MERGE of 1% updates into a table of `scale` rows, against a full rewrite."""

from __future__ import annotations

from bench.harness import Context, Outcome

SHARE = 0.01


def one_percent_updates(ctx: Context, scale: int) -> Outcome:
    folder, _ = ctx.prepare(f"merge-orders-{scale}", "bench.data:merge_target", {"rows": scale})
    table = folder / "lake"
    params = {"rows": scale, "share": SHARE}
    merged = ctx.measure(
        "merge", "lake.merge of 1% updates", "bench.variants.merge:merge", params, lake_from=table
    )
    rewritten = ctx.measure(
        "rewrite",
        "naive: read all, replace rows, overwrite",
        "bench.variants.merge:rewrite",
        params,
        lake_from=table,
    )
    return Outcome(
        summary=f"{merged.seconds:.1f} s, peak RSS {merged.peak_rss_mb:,.0f} MB",
        measurements=[merged, rewritten],
        ratios={
            "speed vs full rewrite": rewritten.seconds / merged.seconds,
            "peak RSS vs full rewrite": merged.peak_rss_mb / rewritten.peak_rss_mb,
        },
    )
