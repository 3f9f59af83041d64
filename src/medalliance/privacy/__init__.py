"""Data privacy module: keys, envelope encryption, pseudonyms, masking, private stores (docs/privacy.md)."""
