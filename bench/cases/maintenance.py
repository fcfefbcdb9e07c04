"""Case 10: table open time after 1,000 small commits, before and after maintenance."""

from __future__ import annotations

from bench.harness import Context, Outcome

VARIANTS = "bench.variants.maintenance"


def open_after_small_commits(ctx: Context, scale: int) -> Outcome:
    commits = 20 if ctx.quick else 1_000
    params = {"commits": commits, "rows_per_commit": 100}
    folder, _ = ctx.prepare(f"events-{commits}-commits", "bench.data:many_commits", params)
    table = folder / "lake"
    replay = ctx.measure(
        "replay",
        f"open after {commits:,} appends, checkpoints deleted",
        f"{VARIANTS}:replay",
        {},
        lake_from=table,
    )
    before = ctx.measure(
        "before", f"open after {commits:,} appends", f"{VARIANTS}:before", {}, lake_from=table
    )
    after = ctx.measure(
        "after",
        "open after table_maintenance (compact, checkpoint, vacuum)",
        f"{VARIANTS}:after",
        {},
        lake_from=table,
    )
    return Outcome(
        summary=(
            f"{commits:,} commits: open {before.seconds * 1000:.0f} ms →"
            f" {after.seconds * 1000:.0f} ms ({replay.seconds * 1000:.0f} ms with no checkpoint);"
            f" full read {before.extra['read_seconds']:.2f} s → {after.extra['read_seconds']:.2f} s"
        ),
        measurements=[replay, before, after],
        ratios={
            "open speed-up": before.seconds / after.seconds,
            "read speed-up": before.extra["read_seconds"] / after.extra["read_seconds"],
            "open speed-up vs no checkpoint": replay.seconds / after.seconds,
        },
        note=(
            "delta-rs writes a checkpoint every 100 commits by itself (delta.checkpointInterval),"
            " so before maintenance the table is at most 99 commits from one; the row with the"
            " checkpoints deleted shows what a full log replay costs."
        ),
    )
