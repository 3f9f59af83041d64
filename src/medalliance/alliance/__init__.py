"""The medical alliance's contracts (paper §3–§5)."""
