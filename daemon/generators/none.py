"""The ``none`` generator: no model at all; ``inboxd ask`` prints the retrieved context,
for a person, a script or another RAG system to take from there."""

from __future__ import annotations


class ContextOnly:
    name = "none"

    def generate(self, system: str, user: str) -> str:
        return user
