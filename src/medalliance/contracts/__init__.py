"""The contract layer: contract API, simulation into read-write sets, lifecycle, endorsement."""

from medalliance.contracts.api import ClientIdentity, Context, Contract, transaction
from medalliance.contracts.composite_key import create_composite_key, split_composite_key

__all__ = [
    "ClientIdentity",
    "Context",
    "Contract",
    "create_composite_key",
    "split_composite_key",
    "transaction",
]
