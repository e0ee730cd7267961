"""The research plan: the indicator catalog, assignments and dispatch, coverage, gap and
success reports, and what the daemon does for them after a corpus run."""
