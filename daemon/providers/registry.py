"""One registry for every provider family (embedders, scorers, generators).

A name from the config picks a ``"module:function"`` factory that is imported only when
chosen, so a heavy optional library (torch, llama_cpp, google.genai) is loaded only by
the provider that needs it, and a provider package (``daemon.gemini``) can live above
the protocols it implements without an import cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar, cast

from daemon.core.config import Config
from daemon.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named factories ``Config -> T`` of one provider family."""

    def __init__(self, key: str, entries: Mapping[str, str]) -> None:
        #: The config key that names a provider, for the operator's error message.
        self.key = key
        self.entries = dict(entries)

    def names(self) -> list[str]:
        """The provider names this build knows."""
        return sorted(self.entries)

    def factory(self, name: str) -> Callable[[Config], T]:
        """The factory registered as ``name`` (imported now)."""
        entry = self.entries.get(name)
        if entry is None:
            choices = ", ".join(self.names())
            raise ConfigError(f"{self.key}: {name!r} is not available here (choose from {choices})")
        module, _, attribute = entry.partition(":")
        return cast(Callable[[Config], T], getattr(importlib.import_module(module), attribute))

    def build(self, name: str, config: Config) -> T:
        """A provider built from ``config``."""
        return self.factory(name)(config)
