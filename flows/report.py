"""Artifacts of a run: a table of what changed and a markdown summary."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows import funnel
from flows.apply_report import ApplyReport
from flows.tasks import Pending, PullResult
from scoring.records import Crm


def publish(
    crm: Crm,
    flow: str,
    pulls: list[PullResult],
    report: ApplyReport,
    dry_run: bool,
    pending: Pending | None = None,
) -> str:
    """Create the run's table and summary artifacts; returns the summary text."""
    rows = (
        [{"contact": c, "change": "new MQL", "detail": ""} for c in report.new_mqls]
        + [
            {"contact": c, "change": "stage", "detail": f"{old or '-'} -> {new}"}
            for c, old, new in report.stage_moves
        ]
        + [{"contact": c, "change": "task", "detail": t} for c, t in report.tasks_created]
        + [
            {"contact": c, "change": f"FAILED {what}", "detail": message[:200]}
            for c, what, message in report.failures
        ]
    )
    mode = "dry run: planned, nothing written" if dry_run else "applied"
    summary = "\n".join(
        [
            f"# {flow} {crm.value} ({mode})",
            "",
            "| stream | records | pages | bad records |",
            "|---|---|---|---|",
            *(f"| {p.stream} | {p.records} | {p.pages} | {p.bad_records} |" for p in pulls),
            "",
            f"- contacts written: {report.updated}",
            f"- new MQLs: {len(report.new_mqls)}",
            f"- stage moves: {len(report.stage_moves)}",
            f"- handoff tasks: {len(report.tasks_created)}",
            f"- failures: {len(report.failures)}",
            f"- handoffs left to another run's claim: {report.skipped_claims}",
            f"- contacts left to another run writing them: {len(report.skipped_writes)}",
            *_pending_lines(pending),
            *(funnel.sync_lines(crm) if flow == "sync" else []),
        ]
    )
    key = f"mqlsync-{flow}-{crm.value}"
    create_table_artifact(key=key + "-changes", table=rows or [{"contact": "", "change": "none",
                          "detail": ""}], description=f"{flow} {crm.value}: {mode}")  # fmt: skip
    create_markdown_artifact(key=key + "-summary", markdown=summary)
    return summary


def _pending_lines(pending: Pending | None) -> list[str]:
    if pending is None:
        return []
    attempts = ", ".join(f"{action} {n}" for action, n in sorted(pending.failures.items()))
    return [
        f"- failed attempts, every retry counted: {sum(pending.failures.values())}"
        + (f" ({attempts})" if attempts else ""),
        f"- MQLs still without a sales task: {pending.handoffs}",
        f"- contacts with writes still to do: {pending.writes}",
        f"- handoffs another run is finishing: {pending.in_other_runs}",
    ]
