"""Deterministic simulation of whole consensus networks in one thread (consensus-design §5).

Run many seeds with `python -m tests.simulation --seeds 1000 --n 1 4 7 --swarm`; replay one with
the command a failure prints.
"""
