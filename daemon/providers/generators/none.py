"""The ``none`` generator: no model at all; ``inboxd ask`` prints the retrieved context,
for a person, a script or another RAG system to take from there."""

from __future__ import annotations

from daemon.core.config import Config


class ContextOnly:
    name = "none"

    def generate(self, system: str, user: str) -> str:
        return user


def from_config(config: Config) -> ContextOnly:
    """The registry's factory for ``none``."""
    return ContextOnly()
