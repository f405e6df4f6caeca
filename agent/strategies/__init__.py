"""The built-in search strategies, one module each: `greedy`, `beam`, `tree` (see `agent.search`)."""
