"""What an agent reaches while it writes: the tools it calls (search, coverage, gaps,
status, ask) and the Model Context Protocol server that serves them over stdio."""
