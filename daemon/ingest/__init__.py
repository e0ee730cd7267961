"""From an agent's folder to rows: which files count (layout), reading and validating
Q&A files, the content-addressed archive, the agent's feedback and its signal files."""
