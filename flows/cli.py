"""The `mqlsync` command line: one entry point for scoring, syncing and the sandbox."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.model_tools import model_app
from flows.records_io import LineErrors, read_activities, read_contacts
from flows.tables import render_table
from scoring.engine import compile_model
from scoring.evidence import describe_evidence
from scoring.model import ModelError, ScoringModel
from scoring.records import Activity, Crm, ScoreResult

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
sandbox_app = typer.Typer(no_args_is_help=True, help="The local CRM sandbox.")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(model_app, name="model")

EXIT_SKIPPED_LINES = 3


def load_model(path: Path) -> ScoringModel:
    """Read and validate a model file; exit with its errors if it is not valid."""
    from flows.check import load_model_file

    try:
        return load_model_file(path)
    except ModelError as exc:
        typer.echo(str(exc), err=True)
    raise typer.Exit(code=1)


def parse_instant(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 instant: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command()
def score(
    model: Annotated[Path, typer.Option(help="scoring model YAML file")],
    contacts: Annotated[Path, typer.Option(help="contacts, one JSON object a line")],
    activities: Annotated[Path, typer.Option(help="activities, one JSON object a line")],
    as_of: Annotated[str | None, typer.Option(help="score as of this ISO 8601 instant")] = None,
    explain: Annotated[
        str | None, typer.Option(help="print the reasons of this contact id as a table")
    ] = None,
    crm: Annotated[str, typer.Option(help="crm of lines that do not say")] = "hubspot",
) -> None:
    """Score contacts from files; one JSON result a line on stdout."""
    scoring_model = load_model(model)
    instant = parse_instant(as_of)
    errors = LineErrors()
    by_contact: dict[str, list[Activity]] = defaultdict(list)
    activity_by_id: dict[str, Activity] = {}
    for activity in read_activities(activities, errors, crm):
        by_contact[activity.contact_id].append(activity)
        if explain is not None and activity.contact_id == explain:
            activity_by_id[activity.crm_id] = activity
    compiled = compile_model(scoring_model)
    found = False
    for contact in read_contacts(contacts, errors, crm):
        if explain is not None and contact.crm_id != explain:
            continue
        result = compiled.score(contact, by_contact.get(contact.crm_id, ()), instant)
        found = True
        if explain is None:
            sys.stdout.write(json.dumps(result_line(result)) + "\n")
        else:
            typer.echo(explain_table(result, activity_by_id))
    for message in errors.messages:
        typer.echo(message, err=True)
    if explain is not None and not found:
        typer.echo(f"no contact with id {explain!r} in {contacts}", err=True)
        raise typer.Exit(code=1)
    if errors.messages:
        typer.echo(f"{len(errors.messages)} line(s) skipped", err=True)
        raise typer.Exit(code=EXIT_SKIPPED_LINES)


def result_line(result: ScoreResult) -> dict[str, object]:
    return {
        "crm_id": result.crm_id,
        "fit": result.fit,
        "engagement": result.engagement,
        "total": result.total,
        "grade": result.grade,
        "is_mql": result.is_mql,
        "model": f"{result.model_name}@{result.model_version}",
        "reasons": [reason.model_dump() for reason in result.reasons],
    }


def explain_table(result: ScoreResult, activities: dict[str, Activity]) -> str:
    head = (
        f"{result.crm_id}: total {result.total:g} (fit {result.fit:g}, engagement "
        f"{result.engagement:g}), grade {result.grade}, "
        f"{'MQL' if result.is_mql else 'not an MQL'} by {result.model_name}@"
        f"{result.model_version} as of {result.as_of.isoformat()}"
    )
    rows = [
        [
            reason.rule,
            f"{reason.points:+g}",
            describe_evidence(reason.evidence, activities),
        ]
        for reason in result.reasons
    ]
    return head + "\n" + render_table(["rule", "points", "evidence"], rows)


# The history `backtest` and `calibrate` read: three files, or none for the store's.
HistoryContacts = Annotated[
    Path | None, typer.Option(help="contacts, one JSON object a line (none: the store's)")
]
HistoryActivities = Annotated[Path | None, typer.Option(help="activities, one JSON object a line")]
HistoryOutcomes = Annotated[Path | None, typer.Option(help="CSV: crm_id,converted,converted_at")]
HistoryCrm = Annotated[
    str, typer.Option(help="the store's history of this CRM, or the crm of lines that do not say")
]


@app.command()
def backtest(
    model: Annotated[list[Path], typer.Option(help="scoring model YAML file; repeat to compare")],
    contacts: HistoryContacts = None,
    activities: HistoryActivities = None,
    outcomes: HistoryOutcomes = None,
    as_of: Annotated[str | None, typer.Option(help="one cut: an ISO 8601 date or instant")] = None,
    cuts: Annotated[str | None, typer.Option(help="cut dates, comma-separated")] = None,
    start: Annotated[str | None, typer.Option(help="first cut date (with --end)")] = None,
    end: Annotated[str | None, typer.Option(help="last cut date (with --start)")] = None,
    every: Annotated[str, typer.Option(help="step between cuts: 30d, 4w")] = "30d",
    horizon_days: Annotated[
        float, typer.Option(help="a conversion counts this many days after a cut")
    ] = 90,
    band: Annotated[str, typer.Option(help="healthy MQL conversion, LOW,HIGH")] = "0.15,0.30",
    json_output: Annotated[bool, typer.Option("--json", help="print metrics JSON")] = False,
    out: Annotated[
        Path | None, typer.Option(help="write report.md, metrics.json and charts here")
    ] = None,
    crm: HistoryCrm = "hubspot",
) -> None:
    """Judge scoring models against outcomes: replay the history at cut dates.

    Exit 0 when judged, 1 when the data cannot be judged (no contacts, no converters),
    2 on a usage error (bad option, invalid model, unreadable file or outcomes header).
    """
    from flows.backtest import Request, run_command

    request = Request(
        models=model, contacts=contacts, activities=activities, outcomes=outcomes,
        as_of=as_of, cuts=cuts, start=start, end=end, every=every,
        horizon_days=horizon_days, band=band, as_json=json_output, out=out, crm=crm,
    )  # fmt: skip
    raise typer.Exit(code=run_command(request, typer.echo, _stderr))


@app.command()
def calibrate(
    model: Annotated[Path, typer.Option(help="scoring model YAML file whose rules are kept")],
    out: Annotated[Path, typer.Option(help="the new model YAML file (never the input)")],
    contacts: HistoryContacts = None,
    activities: HistoryActivities = None,
    outcomes: HistoryOutcomes = None,
    as_of: Annotated[
        str | None, typer.Option(help="the cut (the split date when conversions are dated)")
    ] = None,
    holdout: Annotated[
        float | None, typer.Option(help="share held out when no conversion is dated [0.3]")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the holdout draw")] = 7,
    band: Annotated[str, typer.Option(help="healthy MQL conversion, LOW,HIGH")] = "0.15,0.30",
    horizon_days: Annotated[
        float, typer.Option(help="a conversion counts this many days after a cut")
    ] = 90,
    crm: HistoryCrm = "hubspot",
    train_cuts: Annotated[
        int, typer.Option(help="monthly cut dates to learn from, with dated conversions")
    ] = 6,
) -> None:
    """Learn a model's points from outcomes; write the same rules with new points to --out.

    Exit 0 when written, 1 when refused (too few converters, nothing fires, --out is the
    input; nothing written), 2 on a usage error.
    """
    from flows.calibrate import Request, run_command

    request = Request(
        model=model, contacts=contacts, activities=activities, outcomes=outcomes, out=out,
        as_of=as_of, holdout=holdout, seed=seed, band=band, horizon_days=horizon_days, crm=crm,
        train_cuts=train_cuts,
    )  # fmt: skip
    raise typer.Exit(code=run_command(request, typer.echo, _stderr))


@app.command("explain")
def explain_command(
    contact: Annotated[str, typer.Argument(help="a CRM contact id or an email address")],
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Why a contact has its score, grade and stage: reasons, what was written to the CRM,
    handoff tasks (with a link where the settings allow) and history, from the store."""
    from flows.explain import TaskLinks, explain_contact, explain_json
    from flows.settings import get_settings
    from store.db import make_engine, migrate

    settings = get_settings()
    engine = make_engine(settings.store_url)
    migrate(engine)
    explain = explain_json if json_output else explain_contact
    text = explain(engine, contact, TaskLinks.from_settings(settings))
    if text is None:
        typer.echo(f"no contact {contact!r} in the store at {engine.url!r}", err=True)
        raise typer.Exit(code=1)
    typer.echo(text)


@app.command("status")
def status_command(
    crm: Annotated[str, typer.Argument(help="hubspot or salesforce")],
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    runs: Annotated[int, typer.Option(min=1, help="how many of the last runs to show")] = 10,
) -> None:
    """How the sync stands, from the store only (no CRM request): last runs, cursors and
    their age, claims in progress, contacts whose writes keep failing, quota used today."""
    from flows import runtime
    from flows.settings import get_settings
    from flows.status import status_json, status_text
    from store.db import make_engine, migrate

    name = _crm(crm).value
    engine = make_engine(get_settings().store_url)
    migrate(engine)
    show = status_json if json_output else status_text
    typer.echo(show(engine, name, runtime.now(), runs))


@app.command()
def conversion(
    crm: Annotated[str, typer.Argument(help="hubspot or salesforce")],
) -> None:
    """MQL-to-SQL conversion from sales' feedback (a healthy rate is about 15-30%).

    Today's totals, then the funnel by month of promotion (last 12) and by grade at
    promotion (last 90 days): MQLs, accepted, rejected or recycled, still open.
    """
    from flows import runtime
    from flows.funnel import conversion_tables
    from flows.settings import get_settings
    from store.audit import conversion as conversion_counts
    from store.db import make_engine, migrate

    engine = make_engine(get_settings().store_url)
    migrate(engine)
    counts = conversion_counts(engine, crm)
    rate = counts["accepted"] / counts["mqls"] if counts["mqls"] else 0.0
    typer.echo(
        f"{crm}: {counts['mqls']} MQLs handed to sales, {counts['accepted']} accepted "
        f"({rate:.0%}), {counts['recycled']} recycled to nurture"
    )
    typer.echo("")
    typer.echo(conversion_tables(engine, crm, runtime.now()))


@app.command()
def demo(
    contacts: Annotated[int, typer.Option(help="contacts in the sandbox CRM")] = 2_000,
    seed: Annotated[int, typer.Option(help="seed of the synthetic population")] = 42,
) -> None:
    """The main job on one machine: sandbox CRM, SQLite store, ephemeral Prefect API."""
    from flows.demo import run_demo

    run_demo(contacts, seed, typer.echo)


@app.command()
def check() -> None:
    """Validate the model and both mappings (no CRM request); exit 1 listing each problem."""
    from flows.check import check_configuration
    from flows.settings import get_settings

    problems = check_configuration(get_settings())
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(code=1)
    typer.echo("model and mappings are valid")


@app.command()
def setup() -> None:
    """Create the Prefect work pool and per-CRM rate limits the deployments use."""
    from flows.settings import get_settings
    from flows.setup import setup_prefect

    setup_prefect(get_settings(), typer.echo)


def _run_here(flow: Any, **parameters: Any) -> None:
    """Run a flow once in this process; its text on stdout (stderr if it failed), its
    code as the exit code."""
    from flows.launch import run_flow

    code, text = run_flow(flow, _stderr, **parameters)
    typer.echo(text, err=code != 0)
    raise typer.Exit(code=code)


@app.command()
def sync(
    crm: Annotated[str, typer.Argument(help="hubspot or salesforce")],
    dry_run: Annotated[bool, typer.Option(help="plan only; write nothing to the CRM")] = False,
) -> None:
    """Run the sync flow once, here (Prefect's API from PREFECT_API_URL, else ephemeral)."""
    from flows.sync import CrmName
    from flows.sync import sync as sync_flow

    _run_here(sync_flow, crm=CrmName(crm), dry_run=dry_run)


@app.command()
def rescore(
    crm: Annotated[str, typer.Argument(help="hubspot or salesforce")],
    dry_run: Annotated[bool, typer.Option(help="plan only; write nothing to the CRM")] = False,
) -> None:
    """Score every stored contact again as of now and write what changed, here."""
    from flows.sync import CrmName
    from flows.sync import rescore as rescore_flow

    _run_here(rescore_flow, crm=CrmName(crm), dry_run=dry_run)


@app.command()
def backfill(
    crm: Annotated[str, typer.Argument(help="hubspot or salesforce")],
    start: Annotated[str, typer.Option(help="first day, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last day, YYYY-MM-DD")],
    dry_run: Annotated[bool, typer.Option(help="plan only (the default)")] = True,
) -> None:
    """Re-pull a date range and rescore it, here."""
    from datetime import date

    from flows.sync import CrmName
    from flows.sync import backfill as backfill_flow

    _run_here(
        backfill_flow,
        crm=CrmName(crm),
        start=date.fromisoformat(start),
        end=date.fromisoformat(end),
        dry_run=dry_run,
    )


@app.command()
def doctor(
    crm: Annotated[str, typer.Argument(help="hubspot or salesforce")],
) -> None:
    """Check the CRM: credentials, access, API use, the mapping's fields and values.

    HubSpot: token, scopes, activity sources, quota, properties and options. Salesforce:
    authentication, API version, daily API use, every mapped field (present, writable),
    task picklist values and lead statuses, with a proposed mapping for missing statuses.
    Exit 0 only if a sync would run.
    """
    from flows.doctor import run_doctor

    code, text = run_doctor(_crm(crm))
    typer.echo(text)
    raise typer.Exit(code=code)


@app.command("crm-setup")
def crm_setup(
    crm: Annotated[str, typer.Argument(help="hubspot or salesforce")],
    dry_run: Annotated[bool, typer.Option(help="print what would be created; create nothing")] = (
        False
    ),
    package_dir: Annotated[
        Path,
        typer.Option(
            help="salesforce: where to write a metadata deploy package when the integration "
            "user may not create fields"
        ),
    ] = Path("mqlsync-salesforce-package"),
) -> None:
    """Create what the mapping writes into the CRM (what exists is kept).

    HubSpot: the property group and the written-back properties. Salesforce: the custom
    fields (Tooling API) and the permission set mqlsync_integration granting the
    integration user read and edit on them; without "Customize Application", a deploy
    package and the steps to deploy it instead.
    """
    from flows.doctor import run_setup

    code, text = run_setup(_crm(crm), dry_run=dry_run, package_dir=package_dir)
    typer.echo(text, err=code != 0)
    raise typer.Exit(code=code)


def _crm(name: str) -> Crm:
    try:
        return Crm(name)
    except ValueError:
        raise typer.BadParameter(f"{name!r}: expected hubspot or salesforce") from None


def _stderr(text: str) -> None:
    typer.echo(text, err=True)


@sandbox_app.command("serve")
def sandbox_serve(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0: any free port)")] = 8443,
    contacts: Annotated[int, typer.Option(help="synthetic contacts")] = 1_000,
    seed: Annotated[int, typer.Option(help="seed; the same seed makes the same data")] = 1,
    tier: Annotated[str, typer.Option(help="HubSpot tier: starter|professional|enterprise")] = (
        "professional"
    ),
    faults: Annotated[str | None, typer.Option(help="fault spec, see sandbox/README.md")] = None,
    profile: Annotated[
        str, typer.Option(help="HubSpot portal: configured, or stock (as a portal comes)")
    ] = "configured",
    scopes: Annotated[
        str | None, typer.Option(help="comma-separated HubSpot scopes the token is granted")
    ] = None,
) -> None:
    """Serve the sandbox CRM (HubSpot and Salesforce APIs over TLS) until interrupted."""
    from sandbox.run import serve

    granted = [s.strip() for s in scopes.split(",") if s.strip()] if scopes else None
    serve(port=port, contacts=contacts, seed=seed, tier=tier, faults=faults, profile=profile,
          scopes=granted)  # fmt: skip


if __name__ == "__main__":
    app()
