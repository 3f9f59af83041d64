"""The application layer: what users run on top of the platform."""
