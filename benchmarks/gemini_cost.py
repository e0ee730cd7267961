"""What refining a corpus through Gemini costs, computed from token counts with the
shipped price table (``daemon.core.config.DEFAULT_GEMINI_PRICES``) and batch discount.

    .venv/bin/python benchmarks/gemini_cost.py                 # 17,000 pairs
    .venv/bin/python benchmarks/gemini_cost.py --pairs 2000 --json

Pairs come from ``benchmarks/corpus.py`` (realistic synthetic deliveries). Tokens are
estimated the way the daemon estimates them before a call, about four characters a
token (no tokenizer is available offline; the API's own counts replace the estimate
once calls are made and are what the ledger stores):

- embeddings: every question and every answer is embedded once (``RETRIEVAL_DOCUMENT``);
  the daemon embeds interactively in both modes;
- judge input: the system instruction plus the delimited pair, exactly as sent;
- judge output: a typical verdict (four sub-scores, overall, two issues, a two-sentence
  rationale) serialised as the model returns it; thinking is off (``judge_thinking_budget = 0``).

Enhancement is off by default and not included. No network is touched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.corpus import generate
from daemon.core.config import Config
from daemon.gemini.client import ceil_tokens
from daemon.gemini.costs import cost_usd
from daemon.gemini.judge import Verdict, prompt_for
from daemon.providers.scorers import PairToScore

TYPICAL_VERDICT = Verdict(
    accuracy=4,
    completeness=3,
    specificity=3,
    clarity=4,
    overall=72,
    issues=["no worked example", "threshold values not justified"],
    rationale=(
        "The answer defines the indicator correctly and gives its usual period, but it"
        " does not show how to read a concrete signal."
    ),
)


def estimate(pairs: list[dict[str, Any]], config: Config) -> dict[str, Any]:
    """Tokens and dollars per stage for ``pairs``, interactive and batch."""
    g = config.gemini
    embed_tokens = sum(ceil_tokens(p["question"]) + ceil_tokens(p["answer"]) for p in pairs)
    judge_in = 0
    for p in pairs:
        key = hashlib.sha256(f"{p['question']}\x1f{p['answer']}".encode()).hexdigest()
        system, user = prompt_for(PairToScore(key, p["question"], p["answer"]))
        judge_in += ceil_tokens(system) + ceil_tokens(user)
    judge_out = ceil_tokens(TYPICAL_VERDICT.model_dump_json()) * len(pairs)
    embed_usd = cost_usd(g, g.embedding_model, embed_tokens, 0, batch=False)
    judge_interactive = cost_usd(g, g.judge_model, judge_in, judge_out, batch=False)
    judge_batch = cost_usd(g, g.judge_model, judge_in, judge_out, batch=True)
    return {
        "pairs": len(pairs),
        "embedding_model": g.embedding_model,
        "judge_model": g.judge_model,
        "batch_discount": g.batch_discount,
        "tokens": {
            "embed_input": embed_tokens,
            "judge_input": judge_in,
            "judge_output": judge_out,
        },
        "usd": {
            "embed": round(embed_usd, 2),
            "judge_interactive": round(judge_interactive, 2),
            "judge_batch": round(judge_batch, 2),
            "total_interactive": round(embed_usd + judge_interactive, 2),
            "total_batch": round(embed_usd + judge_batch, 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=17_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args(argv)
    result = estimate(generate(args.pairs, seed=args.seed), Config())
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    t, usd = result["tokens"], result["usd"]
    print(
        f"{result['pairs']:,} pairs; judge {result['judge_model']},"
        f" embeddings {result['embedding_model']}, batch discount {result['batch_discount']}"
    )
    print("| stage | tokens in | tokens out | interactive | batch mode |")
    print("|---|---:|---:|---:|---:|")
    print(f"| embeddings | {t['embed_input']:,} | 0 | ${usd['embed']:.2f} | ${usd['embed']:.2f} |")
    print(
        f"| judge | {t['judge_input']:,} | {t['judge_output']:,} |"
        f" ${usd['judge_interactive']:.2f} | ${usd['judge_batch']:.2f} |"
    )
    print(f"| total | | | ${usd['total_interactive']:.2f} | ${usd['total_batch']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
