"""What an S3 data pipeline run reports: manifest rows, the files table, quarantine reasons,
schema drift and the run's summary (pure: results in, rows or markdown out), and publishing
them as the run's artifacts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from flows.core.artifacts import markdown_table, publish_markdown, publish_table
from flows.etl.s3_pipeline.transforms import Conformed, FileResult, Plan


def manifest_rows(results: Iterable[FileResult], run_id: str) -> list[dict[str, object]]:
    """Manifest rows (LANDING_FILES) for what this run did to each file."""
    return [
        {
            "batch_id": r.file.batch_id,
            "source_file": r.file.path,
            "source": r.file.source,
            "size": r.file.size,
            "tag": r.file.tag,
            "status": r.status,
            "rows": r.bronze_rows,
            "quarantined": r.quarantined,
            "new_columns": ", ".join(r.new_columns) or None,
            "error": r.error,
            "run_id": run_id,
        }
        for r in results
    ]


def files_report(
    results: Iterable[FileResult], ignored: Iterable[tuple[str, str]] = ()
) -> list[dict[str, object]]:
    """One row per file for the run's table artifact, ignored objects with the reason last."""
    skipped: list[dict[str, object]] = [
        {"file": path, "format": "", "status": "ignored", "rows parsed": 0, "quarantined": 0,
         "new columns": "", "error": why}
        for path, why in ignored
    ]  # fmt: skip
    return [
        {
            "file": r.file.path,
            "format": r.file.format or "unknown",
            "status": r.status,
            "rows parsed": r.rows,
            "quarantined": r.quarantined,
            "new columns": ", ".join(r.new_columns),
            "error": r.error or "",
        }
        for r in results
    ] + skipped


def drift_report(results: Iterable[FileResult]) -> str:
    """Markdown: which files brought columns the contract does not know, or lacked required ones."""
    added = [(r.file.path, ", ".join(r.new_columns)) for r in results if r.new_columns]
    missing = [(r.file.path, r.error) for r in results if r.error and "required" in r.error]
    lines = ["# Schema drift", ""]
    lines += [f"- `{path}` added: {columns} (kept in bronze)" for path, columns in added]
    lines += [f"- `{path}` rejected: {error}" for path, error in missing]
    return "\n".join(lines if len(lines) > 2 else [*lines, "No drift: every file matched."])


def quarantine_report(conformed: Iterable[Conformed]) -> str:
    """Markdown: how many rows were quarantined, by reason, most frequent first."""
    reasons = Counter[str]()
    for c in conformed:
        reasons.update(c.reasons)
    return f"# Quarantined rows: {sum(reasons.values())}\n\n" + markdown_table(
        [{"reason": k, "rows": v} for k, v in reasons.most_common()]
    )


def run_summary(
    results: list[FileResult], conformed: list[Conformed], *, done_before: int, gold_commits: int
) -> dict[str, int]:
    """The run's counts: files by outcome, rows parsed, conformed, valid and quarantined."""
    return {
        "files_ingested": sum(r.status in ("done", "bronze") for r in results),
        "files_empty": sum(r.status == "empty" for r in results),
        "files_failed": sum(r.status == "failed" for r in results),
        "files_done_before": done_before,
        "rows_parsed": sum(r.rows for r in results),
        "rows_conformed": sum(c.bronze_rows for c in conformed),
        "rows_valid": sum(c.valid for c in conformed),
        "rows_quarantined": sum(c.quarantined for c in conformed),
        "gold_commits": gold_commits,
    }


EMPTY_LANDING = (
    "{landing}/ holds no files yet and sample data is off here (LAKE_SAMPLE_DATA): nothing was"
    " written. Deliver files under {landing}/<table>/, one folder per table fed from landing,"
    " or pass --sample-data to ingest sample files"
)

FAILED_FILE_HINT = (
    "A failed delivery is not tried again: deliver a corrected file (a changed file is a new"
    " delivery), or, after a fix elsewhere (the contract, the parser), re-run with"
    " --retry-failed PATH (or --retry-failed for every failed file)"
)


def outcome_message(summary: dict[str, int]) -> str:
    """The run's final state message: how many files landed, and how many failed alone."""
    landed = f"{summary['files_ingested']} file(s) ingested"
    if not summary["files_failed"]:
        return landed
    return f"{landed}; {summary['files_failed']} failed alone (see the s3-pipeline-files artifact)"


def publish_run(results: list[FileResult], work: Plan, conformed: list[Conformed]) -> None:
    """The run's artifacts: every file and what became of it, quarantine reasons, schema drift."""
    publish_table(
        "s3-pipeline-files",
        files_report(results, work.ignored),
        description=f"{len(results)} files this run; {work.already_done} done before",
    )
    publish_markdown(
        "s3-pipeline-quarantine",
        quarantine_report(conformed),
        description="Why rows were rejected into quarantine/<table>",
    )
    publish_markdown("s3-pipeline-drift", drift_report(results), description="Schema drift")
