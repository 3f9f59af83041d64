"""Fabric's sample contracts, ported so Fabric's own sample applications run unchanged."""
