"""The daemon's hooks on its :class:`~daemon.services.Services`: what the supervisor runs
during intake and what the worker runs beside the stages (reports, gap-fill, the
automatic export, the Gemini judge, the Chroma sync, the agent's feedback)."""

from __future__ import annotations

from functools import partial

from daemon.gemini.hooks import attach as attach_gemini
from daemon.plan import agent_feedback
from daemon.plan import hooks as plan_hooks
from daemon.rag.chroma import attach as attach_chroma
from daemon.rag.export import export_after_corpus_run
from daemon.services import Services


def attach_intake_hooks(services: Services) -> Services:
    """What the supervisor runs during intake: assignment files become sessions."""
    services.hooks.on_assignment = plan_hooks.assignment_reader(services)
    # A rejected version comes to rest here: the agent's feedback index follows.
    services.hooks.after_move.append(partial(agent_feedback.after_batch_moved, services))
    return services


def attach_worker_hooks(services: Services) -> Services:
    """What the worker runs beside the stages: reports and gap-fill after a corpus run,
    the automatic export, and the Gemini judge (its hook and its poll) when configured."""
    hooks = services.hooks
    hooks.after_corpus_run.append(partial(plan_hooks.after_corpus_run, services))
    if services.config.rag.auto_export:
        hooks.after_corpus_run.append(partial(export_after_corpus_run, services))
    gemini = attach_gemini(services)
    if gemini is not None:
        hooks.after_corpus_run.append(gemini.after_corpus_run)
        hooks.idle_work.append(gemini.tick)
    # Last, so they see what the hooks before them changed (judge scores, say).
    hooks.after_move.append(partial(agent_feedback.after_batch_moved, services))
    hooks.after_corpus_run.append(partial(agent_feedback.after_corpus_run, services))
    attach_chroma(services)  # registers nothing unless [rag] chroma_sync
    return services
