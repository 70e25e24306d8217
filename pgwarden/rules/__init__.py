"""Rules: the rule seam, the registry and the built-in rule families."""
