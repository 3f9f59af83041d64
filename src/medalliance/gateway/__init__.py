"""Fabric's Gateway, Deliver and Endorser gRPC services on a peer (application layer)."""
