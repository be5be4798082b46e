"""A run's progress: phases, counts and rates from a clock the tests move; a Prefect progress
artifact updated at most once a second that never fails the run; a terminal line rewritten
in place, or plain lines when the output is no terminal. Then a sync against the sandbox
CRM, and `mqlsync sync hubspot`, with the progress they leave."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from flows.progress import ArtifactSink, Progress, TerminalSink, View
from flows.tasks import STREAMS, PullResult
from tests.flows.sandbox_runs import sandbox_on_its_clock


class Clock:
    """A monotonic clock that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A sink that keeps every view it is given."""

    def __init__(self) -> None:
        self.updates: list[View] = []
        self.closed: list[View] = []

    def update(self, view: View, now: float) -> None:
        self.updates.append(view)

    def close(self, view: View, now: float) -> None:
        self.closed.append(view)


def a_run(streams: tuple[str, ...] = STREAMS) -> tuple[Progress, Recorder, Clock]:
    clock, sink = Clock(), Recorder()
    return Progress("sync", "hubspot", streams, sinks=[sink], clock=clock), sink, clock


def test_streams_pulled_at_once_take_turns_each_with_its_own_rate() -> None:
    run, sink, clock = a_run()
    run.pulling("contacts")
    run.pulling("activities")
    clock.now += 2
    run.page("activities", 1, 1_000)
    assert sink.updates[-1].line == "pulling activities  1 page  1,000 records  500/s"
    clock.now += 2
    run.page("contacts", 2, 200)
    # The contacts' rate runs from their own start, not from the last switch.
    assert sink.updates[-1].line == "pulling contacts  2 pages  200 records  50/s"
    clock.now += 1
    run.page("activities", 3, 3_000)
    assert sink.updates[-1].line == "pulling activities  3 pages  3,000 records  600/s"
    run.pulled(PullResult("contacts", records=300, pages=3))
    assert sink.updates[-1].line == "pulling contacts  3 pages  300 records  60/s"
    assert sink.updates[-1].pulled == ("contacts 3 pages, 300 records",)
    clock.now += 5
    run.page("activities", 4, 4_000)
    assert sink.updates[-1].line == "pulling activities  4 pages  4,000 records  400/s"
    run.pulled(PullResult("activities", records=4_000, pages=4))
    assert sink.updates[-1].percent == 26.7  # two streams of three


def test_phases_counts_and_rates() -> None:
    run, sink, clock = a_run()
    run.begin()
    assert sink.updates[-1].line == "starting" and sink.updates[-1].percent == 0.0

    run.pulling("contacts")
    clock.now += 4
    run.page("contacts", 1, 100)
    run.page("contacts", 2, 200)
    assert sink.updates[-1].line == "pulling contacts  2 pages  200 records  50/s"
    run.pulled(PullResult("contacts", records=300, pages=3))
    assert sink.updates[-1].line == "pulling contacts  3 pages  300 records  75/s"
    assert sink.updates[-1].percent == 13.3  # one stream of three: a third of the pull's 40%

    # Pages of the next stream start its phase, its counts and its rate from zero.
    clock.now += 10
    run.page("activities", 1, 1)
    assert sink.updates[-1].line == "pulling activities  1 page  1 record"  # no time, no rate
    clock.now += 2
    run.page("activities", 12, 11_950)
    assert sink.updates[-1].line == "pulling activities  12 pages  11,950 records  5,975/s"
    # A retried pull reports from its first page again: the counts restart.
    run.pulling("activities")
    assert sink.updates[-1].line == "pulling activities  0 pages  0 records"
    run.pulled(PullResult("activities", records=11_950, pages=12))
    run.pulled(PullResult("deletions"))
    assert sink.updates[-1].line == "pulling deletions  0 pages  0 records"
    assert sink.updates[-1].percent == 40.0

    run.scoring(batches=6, contacts=2_843)
    clock.now += 5
    run.batch_done(500)
    run.batch_done(500)
    view = sink.updates[-1]
    assert view.line == "scoring  2/6 batches  1,000/2,843 contacts  200/s"
    assert view.percent == round(40 + 60 * 1_000 / 2_843, 1)
    assert view.description == "sync hubspot: scoring, 2/6 batches, 1,000/2,843 contacts, 200/s"
    for size in (500, 500, 500, 343):
        run.batch_done(size)
    assert sink.updates[-1].percent == 99.0  # 100 only once the run has finished
    assert not sink.closed

    clock.now += 1  # the rest of the run: the rate stays the phase's own
    run.finish()
    [last] = sink.closed
    assert last.percent == 100.0 and last.ended == "done"
    assert last.line == "scoring  6/6 batches  2,843/2,843 contacts  569/s"
    assert last.description == (
        "sync hubspot: done. Last phase: scoring, 6/6 batches, 2,843/2,843 contacts, 569/s. "
        "Pulled: contacts 3 pages, 300 records; activities 12 pages, 11,950 records; "
        "deletions 0 pages, 0 records."
    )
    count = len(sink.updates)
    run.batch_done(1)
    run.finish()
    assert len(sink.updates) == count and len(sink.closed) == 1  # a finished run is quiet


def test_a_rescore_is_all_scoring_and_a_stopped_run_keeps_its_percent() -> None:
    run, sink, _ = a_run(streams=())
    run.scoring(batches=2, contacts=10)
    assert sink.updates[-1].percent == 0.0
    run.batch_done(4)
    assert sink.updates[-1].percent == 40.0
    run.finish()
    assert sink.closed[-1].percent == 100.0

    empty, sink, _ = a_run(streams=())
    empty.scoring(batches=0, contacts=0)
    assert sink.updates[-1].line == "scoring  0/0 batches  0/0 contacts"
    assert sink.updates[-1].percent == 99.0  # nothing to score: scoring is done

    stopped, sink, _ = a_run()
    stopped.pulled(PullResult("contacts", records=5, pages=1))
    stopped.pulling("activities")
    stopped.stop("pull of activities failed, nothing scored")
    [last] = sink.closed
    assert last.percent == 13.3 and last.ended == "stopped"
    assert last.description == (
        "sync hubspot: stopped during pulling activities, 0 pages, 0 records: "
        "pull of activities failed, nothing scored"
    )


def test_without_a_run_progress_reports_nowhere() -> None:
    from flows import progress

    shown = progress.current()
    shown.page("contacts", 1, 10)  # a task on a worker without the flow: nothing, no error
    shown.batch_done(3)
    assert progress.current() is not shown
    # A run of this process that ended, or that is not the run asking, is not reported to.
    sink = Recorder()
    ended = Progress("sync", "hubspot", sinks=[sink])
    token = progress._current.set(ended)
    try:
        assert progress.current() is ended  # outside any flow run, like the run itself
        ended.finish()
        assert progress.current() is not ended
        other = Progress("sync", "hubspot", sinks=[sink])
        other.run_id = str(uuid4())
        progress._current.set(other)
        assert progress.current() is not other
    finally:
        progress._current.reset(token)


# --- the artifact ------------------------------------------------------------------------


class FakeArtifacts:
    def __init__(self, refuse_create: bool = False, refuse_updates: bool = False) -> None:
        self.refuse_create, self.refuse_updates = refuse_create, refuse_updates
        self.created: list[tuple[str, float, str]] = []
        self.updated: list[tuple[float, str]] = []
        self.id = uuid4()

    def create(self, key: str, progress: float, description: str) -> UUID:
        if self.refuse_create:
            raise RuntimeError("422 Unprocessable Entity")
        self.created.append((key, progress, description))
        return self.id

    def update(self, artifact_id: UUID, progress: float, description: str) -> None:
        assert artifact_id == self.id
        if self.refuse_updates:
            raise RuntimeError("503 Service Unavailable")
        self.updated.append((progress, description))


def test_the_artifact_is_created_once_then_updated_at_most_once_a_second() -> None:
    api = FakeArtifacts()
    clock = Clock()
    sink = ArtifactSink("mqlsync-sync-hubspot-progress", api=api)
    run = Progress("sync", "hubspot", STREAMS, sinks=[sink], clock=clock)
    run.begin()
    assert api.created == [("mqlsync-sync-hubspot-progress", 0.0, "sync hubspot: starting")]
    run.pulling("contacts")
    for page in range(1, 65):  # 64 pages in half a second: no update
        clock.now += 1 / 128
        run.page("contacts", page, page * 100)
    assert api.updated == []
    clock.now += 0.5
    run.page("contacts", 65, 6_500)  # a second after the creation
    assert api.updated == [
        (0.0, "sync hubspot: pulling contacts, 65 pages, 6,500 records, 6,500/s")
    ]
    clock.now += 0.75
    run.pulled(PullResult("contacts", records=6_500, pages=65))
    run.scoring(batches=1, contacts=7)
    assert len(api.updated) == 1
    clock.now += 0.25
    run.batch_done(7)  # a second after the last update
    assert len(api.updated) == 2 and api.updated[-1][1].startswith("sync hubspot: scoring, 1/1")
    run.finish()  # the end is sent whatever the time
    assert len(api.updated) == 3
    progress, description = api.updated[-1]
    assert progress == 100.0 and description.startswith("sync hubspot: done. Last phase: scoring")
    assert len(api.created) == 1


def test_an_unchanged_view_is_not_sent_again() -> None:
    api = FakeArtifacts()
    sink = ArtifactSink("k", api=api)
    view = View("sync", "hubspot", "scoring", ("1/2 batches",), 50.0)
    sink.update(view, 0.0)
    sink.update(view, 5.0)
    sink.close(view, 6.0)
    assert len(api.created) == 1 and api.updated == []


def test_an_api_that_refuses_updates_costs_one_warning_not_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeArtifacts(refuse_updates=True)
    clock = Clock()
    run = Progress("sync", "hubspot", STREAMS, sinks=[ArtifactSink("k", api=api)], clock=clock)
    with caplog.at_level(logging.WARNING, logger="flows.progress"):
        run.begin()
        for page in range(1, 6):
            clock.now += 2
            run.page("contacts", page, page)
        run.finish()
    assert len(api.created) == 1 and api.updated == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "flows.progress"]
    assert len(warnings) == 1 and "not updated (the run goes on)" in warnings[0]
    assert "503" in warnings[0]

    refused = FakeArtifacts(refuse_create=True)
    caplog.clear()
    run = Progress("sync", "hubspot", sinks=[ArtifactSink("k", api=refused)], clock=clock)
    with caplog.at_level(logging.WARNING, logger="flows.progress"):
        run.begin()
        clock.now += 2
        run.scoring(1, 1)
        run.finish()
    assert refused.created == [] and refused.updated == []
    assert [r.getMessage() for r in caplog.records if r.name == "flows.progress"] == [
        "no progress artifact for this run (k): 422 Unprocessable Entity"
    ]


# --- the terminal ------------------------------------------------------------------------


def drive(sink: TerminalSink, clock: Clock) -> Progress:
    """A small sync's reports: pages of contacts 1/16 s apart, of activities 1 s apart."""
    run = Progress("sync", "hubspot", STREAMS, sinks=[sink], clock=clock)
    run.begin()
    run.pulling("contacts")
    for page in range(1, 4):
        clock.now += 1 / 16
        run.page("contacts", page, page * 100)
    run.pulled(PullResult("contacts", records=300, pages=3))
    run.pulling("activities")
    for page in range(1, 13):
        clock.now += 1
        run.page("activities", page, page * 1_000)
    run.pulled(PullResult("activities", records=12_000, pages=12))
    run.pulling("deletions")
    run.pulled(PullResult("deletions", records=0, pages=1))
    run.scoring(batches=2, contacts=700)
    clock.now += 2
    run.batch_done(500)
    clock.now += 1 / 16
    run.batch_done(200)
    return run


def test_on_a_terminal_one_line_per_phase_rewritten_in_place() -> None:
    out, clock = io.StringIO(), Clock()
    sink = TerminalSink(out, tty=True, width=80)
    drive(sink, clock).finish()
    text = out.getvalue()
    # What stays on the screen: each line as its last "\r" left it.
    screen = [line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
    assert screen == [
        "pulling contacts  3 pages  300 records  1,600/s",
        "pulling activities  12 pages  12,000 records  1,000/s",
        "pulling deletions  1 page  0 records",
        "scoring  2/2 batches  700/700 contacts  339/s",
        "",
    ]
    activities = text.split("\n")[1]
    # Rewritten in place, at most ten times a second: every page a second apart is drawn.
    assert activities.count("\r") == 1 + 12 + 1  # phase start, 12 pages, its final counts
    contacts = text.split("\n")[0]
    assert "pulling contacts  1 page  100 records" not in contacts  # 1/16 s: not redrawn
    # A shorter line covers the longer one it replaces.
    assert "\rpulling deletions  1 page  0 records \n" in text


def test_a_log_line_wipes_the_progress_line_which_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.launch import terminal_progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Tty()
    handler = logging.StreamHandler(screen)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])
    clock = Clock()
    with terminal_progress(screen) as sink:
        run = Progress("sync", "hubspot", sinks=[sink], clock=clock)
        run.scoring(2, 10)
        logging.getLogger("tests.progress").warning("a log line")
        clock.now += 1 / 100
        run.batch_done(5)  # redrawn at once, however soon: the log line took its place
    assert logging.getLogger().handlers == [handler]
    first = "scoring  0/2 batches  0/10 contacts"
    assert screen.getvalue() == (
        f"\r{first}\r{' ' * len(first)}\ra log line\n\rscoring  1/2 batches  5/10 contacts  500/s\n"
    )


def test_elsewhere_plain_lines_at_phase_ends_and_every_few_seconds() -> None:
    out, clock = io.StringIO(), Clock()
    drive(TerminalSink(out, tty=False), clock).finish()
    assert "\r" not in out.getvalue()
    assert out.getvalue().splitlines() == [
        "pulling contacts  3 pages  300 records  1,600/s",
        "pulling activities  5 pages  5,000 records  1,000/s",  # five seconds in
        "pulling activities  10 pages  10,000 records  1,000/s",
        "pulling activities  12 pages  12,000 records  1,000/s",
        "pulling deletions  1 page  0 records",
        "scoring  2/2 batches  700/700 contacts  339/s",
    ]


# --- a sync against the sandbox CRM, from the flow and from the command line ---------------


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: None) -> Iterator[Any]:
    """A sandbox CRM and an empty store; scoring in batches of 25 contacts."""
    with sandbox_on_its_clock(tmp_path, monkeypatch, contacts=120, seed=5) as sb:
        monkeypatch.setenv("MQLSYNC_BATCH_SIZE", "25")
        yield sb


def progress_artifacts(run_id: UUID) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    return [a for a in found if a.type == "progress"]


def test_a_sync_leaves_its_progress_artifact_at_100_naming_its_last_phase(sandbox: Any) -> None:
    from flows import progress
    from flows.sync import CrmName, sync

    screen = io.StringIO()
    every_report = TerminalSink(screen, tty=True, redraw_s=0, width=200)
    with progress.terminal(every_report):
        state = sync(crm=CrmName.hubspot, dry_run=True, return_state=True)
    assert state.is_completed(), state.message
    # The pull task reports each page to its flow's progress: counts within a stream.
    assert "\rpulling activities  2 pages  " in screen.getvalue()
    [artifact] = progress_artifacts(state.state_details.flow_run_id)
    assert artifact.key == "mqlsync-sync-hubspot-progress"
    assert artifact.data == 100.0
    description = artifact.description or ""
    assert description.startswith("sync hubspot: done. Last phase: scoring, "), description
    scored = re.search(r"scoring, (\d+)/(\d+) batches, ([\d,]+)/([\d,]+) contacts", description)
    assert scored is not None and scored[1] == scored[2] and scored[3] == scored[4]
    assert int(scored[1]) >= 2  # its contacts, in batches of 25
    for stream in STREAMS:
        assert f"{stream} " in description.split("Pulled: ", 1)[1]


def test_the_command_line_prints_plain_progress_lines_when_not_on_a_terminal(
    sandbox: Any,
) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["sync", "hubspot", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.stderr
    lines = [
        line for line in result.stderr.splitlines() if line.startswith(("pulling ", "scoring "))
    ]
    phases = [line.split("  ", 1)[0] for line in lines]
    assert list(dict.fromkeys(phases)) == [*(f"pulling {s}" for s in STREAMS), "scoring"]
    assert re.fullmatch(r"pulling contacts  \d+ pages?  [\d,]+ records?(  [\d,]+/s)?", lines[0])
    last = re.fullmatch(r"scoring  (\d+)/(\d+) batches  ([\d,]+)/([\d,]+) contacts.*", lines[-1])
    assert last is not None and last[1] == last[2] and last[3] == last[4], lines[-1]
    # The run's text stays alone on stdout, for whoever pipes it.
    assert result.stdout.startswith("# sync HubSpot (dry run)"), result.stdout[:200]
    assert "pulling " not in result.stdout


def test_the_command_line_rescores_the_stored_contacts(sandbox: Any) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["sync", "hubspot"]).exit_code == 0
    result = runner.invoke(app, ["rescore", "hubspot", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# rescore HubSpot (dry run)"), result.stdout[:200]
    scored = re.search(r"contacts scored: ([\d,]+)", result.stdout)
    assert scored is not None and int(scored[1].replace(",", "")) > 0, result.stdout[:600]
