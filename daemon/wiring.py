"""Builds what the stages need from the config (catalog, providers) at start-up, so the
service stays a lifecycle and the stages stay plain functions."""

from __future__ import annotations

from daemon.stages import Stage, StageContext
from daemon.states import BatchState


def wire(ctx: StageContext, stages: dict[BatchState, Stage]) -> dict[BatchState, Stage]:
    """Attach the configured services to ``ctx``; returns the stage table to run."""
    return stages
