"""The optional Gemini provider (google-genai): a client with bounded timeouts and our
own retries, the LLM judge, Batch API jobs that survive restarts, optional enhancement,
and the cost ledger with its budget cap.

google.genai is imported only when the config names Gemini; the default run stays offline.

    client.py    the only google.genai import: the client, retries (``call``), requests
                 built from plain arguments and answers returned as plain types
    costs.py     price table, the Ledger (budget check and cost record, through the
                 Store), the budget cap, spend_summary
    judge.py     the rubric prompt, the response schema, validation, the interactive scorer
    batch.py     one Batch API job per corpus run: submit, poll, apply, resume
    enhance.py   optional rewrites of low-scored pairs, kept only when they score higher
    gold.py      the judge's agreement with a gold set of known verdicts
    hooks.py     what the daemon registers: the corpus-run hook and the idle poll
"""
