"""What the daemon does for the plan: register assignment files as they appear in
``inbox/<agent>/``, and after each corpus run write the gap and success reports and,
with ``[coverage] auto_dispatch_gaps``, the gap-fill assignments."""

from __future__ import annotations

from daemon.core.logs import Event
from daemon.plan import dispatch, reports
from daemon.services import AssignmentHandler, Services


def assignment_reader(ctx: Services) -> AssignmentHandler:
    """The handler for a settled ``session-NN-assignment.md``."""

    def read(agent: str, relpath: str, text: str, now: float) -> bool:
        found = dispatch.register(ctx.store, ctx.catalog, ctx.config, agent, relpath, text, now)
        if found is None:
            return False
        ctx.log.info(
            Event.ASSIGNMENT_REGISTERED,
            agent=agent,
            path=relpath,
            session=found.session,
            kind=found.kind,
            indicators=len(found.requests),
            unknown=list(found.unknown) or None,
        )
        return True

    return read


def after_corpus_run(ctx: Services, now: float) -> None:
    """Reports after a corpus run; gap-fill assignments when configured."""
    catalog = ctx.catalog
    found = reports.gather(ctx.store, ctx.config, catalog)
    gaps, paths = reports.write_gaps(ctx.config, found)
    success = reports.success_report(ctx.store, ctx.config, found)
    paths += reports.write_success(ctx.config, success)
    ctx.log.info(
        Event.REPORT_WRITTEN,
        paths=[str(p.relative_to(ctx.config.root)) for p in paths],
        indicators_without_pairs=len(gaps["indicators_without_pairs"]),
        indicators_below_target=len(gaps["indicators_below_target"]),
        tier=success["reached"],
    )
    if not ctx.config.coverage.auto_dispatch_gaps:
        return
    agent = ctx.config.coverage.agent
    done = dispatch.dispatch_gaps(
        ctx.store, ctx.config, catalog, agent, found, force=False, now=now
    )
    # Files a person edited are kept, not replaced: a warning says which.
    (ctx.log.warning if done.kept else ctx.log.info)(
        Event.GAPS_DISPATCHED,
        agent=agent,
        sessions=done.sessions,
        files=done.written,
        kept_edited=done.kept or None,
    )
