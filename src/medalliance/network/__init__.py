"""Network layer: gRPC transport with TLS, block delivery, commit notifications."""
