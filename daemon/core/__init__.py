"""What every layer may use: the config, the error tree, logging, plain records, atomic
file writes. Imports nothing else from ``daemon``."""
