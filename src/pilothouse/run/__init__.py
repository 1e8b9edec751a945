"""One run of an agent: the loop, its events, outputs, metrics and context."""
