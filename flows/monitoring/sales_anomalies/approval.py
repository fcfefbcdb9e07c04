"""The approval gate of the sales anomaly report: the reviewer's form and how to answer it."""

from __future__ import annotations

from prefect.input import RunInput


class Approval(RunInput):
    """The reviewer's decision on a report."""

    approve: bool
    comment: str = ""


def approval_instructions(
    run_id: str, *, ui_url: str | None, api_url: str, timeout_seconds: int
) -> str:
    """The log line that tells a person how to approve (or reject) the paused run."""
    in_ui = (
        f"open {ui_url.rstrip('/')}/runs/flow-run/{run_id}, press Resume and fill in the form; or "
        if ui_url
        else ""
    )
    return (
        f"Waiting up to {timeout_seconds} s for approval of this report. To answer, {in_ui}run: "
        + f'PREFECT_API_URL={api_url} python -c "from prefect.flow_runs import resume_flow_run;'
        f" resume_flow_run('{run_id}', run_input={{'approve': True, 'comment': 'checked'}})\""
        " (approve False to reject). Without an answer nothing is published and the run fails;"
        " --auto-approve skips the question on a local run."
    )
