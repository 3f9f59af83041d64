"""medalliance: a consortium blockchain for a regional medical alliance."""

__version__ = "0.1.0"
