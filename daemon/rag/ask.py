"""``inboxd ask``: retrieve the pairs that answer a question, then answer from them.

Retrieval is the hybrid search (so abbreviations work), keeping only pairs within the
distance threshold and at or above ``[rag] min_quality``. When none is left, the answer
is "I don't know" and the model is never called: a RAG system that invents is worse
than one that declines.

Citations do not rely on the model: a 135M model follows instructions loosely, so the
program lists every pair it handed the model as the answer's sources, and separately
reports which of those ids the model's text mentions (``cited``). Ids the model makes
up are not in the retrieved set and are ignored.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from daemon.core.config import Config
from daemon.providers.generators import Generator
from daemon.search.searcher import Hit, Mode

ANSWERED = "ask.answered"
SYSTEM_PROMPT = (
    "You answer questions about crypto market indicators using only the numbered sources"
    " given. Cite each source you use by its number in square brackets, like [12]. If the"
    " sources do not answer the question, say that you do not know."
)
# Characters per token, roughly, for English text: used to keep the prompt in the window.
_CHARS_PER_TOKEN = 3
_PROMPT_OVERHEAD_TOKENS = 160
_ID = re.compile(r"\d+")


class PairSearch(Protocol):
    """What ``ask`` needs of a searcher: ``daemon.search.searcher.Searcher`` in this process, or
    ``daemon.runtime.search_client.LiveSearcher`` (the running daemon first)."""

    def search(
        self,
        query: str,
        *,
        k: int = ...,
        max_distance: float | None = ...,
        indicator: str | None = ...,
        min_quality: float | None = ...,
        mode: Mode = ...,
    ) -> list[Hit]: ...


@dataclass(frozen=True)
class Source:
    pair_id: int
    indicator: str | None
    question: str
    answer: str
    distance: float
    quality: float | None


@dataclass
class Answer:
    question: str
    text: str
    declined: bool
    generator: str
    max_distance: float
    sources: list[Source] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    closest: tuple[int, float] | None = None  # the nearest pair when declining
    duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        """The answer for a terminal: text, then the sources it came from."""
        if self.declined:
            return self.text
        lines = [self.text, "", f"Sources ({len(self.sources)} pairs given to {self.generator}):"]
        for source in self.sources:
            mark = "*" if source.pair_id in self.cited else " "
            lines.append(
                f" {mark}[{source.pair_id}] distance {source.distance:.3f}"
                f" {source.indicator or '-'}: {source.question}"
            )
        if self.cited:
            lines.append(" (* cited in the answer)")
        return "\n".join(lines)


def build_prompt(question: str, sources: list[Source], context_tokens: int) -> str:
    """The user message: numbered sources, each cut to share the context window fairly."""
    budget = max(200, (context_tokens - _PROMPT_OVERHEAD_TOKENS) * _CHARS_PER_TOKEN)
    each = budget // max(1, len(sources))
    blocks = []
    for source in sources:
        text = f"[{source.pair_id}] Q: {source.question}\nA: {source.answer}"
        blocks.append(text if len(text) <= each else text[: each - 3].rstrip() + "...")
    return "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}\nAnswer:"


def cited_ids(text: str, sources: list[Source]) -> list[int]:
    """Retrieved ids the text mentions, in the order given; anything else is ignored."""
    mentioned = {int(m) for m in _ID.findall(text)}
    return [s.pair_id for s in sources if s.pair_id in mentioned]


def _source(hit: Hit, distance: float) -> Source:
    return Source(
        hit.pair_id, hit.indicator, hit.question, hit.answer, round(distance, 4), hit.quality
    )


def retrieve(
    searcher: PairSearch, question: str, *, k: int, max_distance: float, min_quality: float | None
) -> list[Source]:
    """The ``k`` best pairs within ``max_distance`` (hybrid ranking, distance filter)."""
    hits = searcher.search(
        question, k=k * 3, max_distance=max_distance, min_quality=min_quality, mode="hybrid"
    )
    # Hybrid search also returns lexical hits, with their distance filled in: those
    # beyond the threshold are not evidence.
    kept = [(h, h.distance) for h in hits if h.distance is not None and h.distance <= max_distance]
    return [_source(h, d) for h, d in kept[:k]]


def ask(
    question: str,
    searcher: PairSearch,
    generator: Generator,
    *,
    k: int,
    max_distance: float,
    min_quality: float | None,
    context_tokens: int,
    log: Any,
) -> Answer:
    """Retrieve, then answer from the retrieved pairs (or decline without the model)."""
    started = time.monotonic()
    sources = retrieve(searcher, question, k=k, max_distance=max_distance, min_quality=min_quality)
    if not sources:
        nearest = searcher.search(question, k=1, max_distance=2.0, mode="dense")
        closest = (nearest[0].pair_id, round(nearest[0].distance or 0.0, 4)) if nearest else None
        where = f" (the closest, pair {closest[0]}, is at {closest[1]:.3f})" if closest else ""
        answer = Answer(
            question,
            f"I don't know: no pair in the knowledge base is within distance {max_distance:.2f}"
            f" of this question{where}.",
            declined=True,
            generator=generator.name,
            max_distance=max_distance,
            closest=closest,
        )
    else:
        text = generator.generate(SYSTEM_PROMPT, build_prompt(question, sources, context_tokens))
        answer = Answer(
            question,
            text or "(the model returned no text)",
            declined=False,
            generator=generator.name,
            max_distance=max_distance,
            sources=sources,
            cited=cited_ids(text, sources),
        )
    answer.duration_ms = round((time.monotonic() - started) * 1000)
    log.info(
        ANSWERED,
        generator=generator.name,
        declined=answer.declined,
        sources=[s.pair_id for s in answer.sources],
        cited=answer.cited,
        duration_ms=answer.duration_ms,
    )
    return answer


def ask_configured(
    config: Config,
    question: str,
    searcher: PairSearch,
    generator: Generator,
    *,
    k: int | None = None,
    max_distance: float | None = None,
    log: Any,
) -> Answer:
    """``ask`` with a root's settings: ``[rag] ask_k`` pairs at ``min_quality`` or better
    within ``[search] max_distance``, the prompt sized to ``[rag] context_size``."""
    return ask(
        question,
        searcher,
        generator,
        k=k or config.rag.ask_k,
        max_distance=config.search.max_distance if max_distance is None else max_distance,
        min_quality=config.rag.min_quality,
        context_tokens=config.rag.context_size - config.rag.max_tokens,
        log=log,
    )
