"""A contract over private data collections, for the private data tests (values come in the
transient map, as Fabric's samples pass them, so they never reach the ledger)."""

from __future__ import annotations

from medalliance.contracts.api import Context, Contract, transaction

SHARED = "shared"  # members HospA and HospB
OWN = "hospAOnly"  # member HospA, blockToLive 2


class PrivateNotes(Contract):
    name = "notes"

    @transaction
    def Put(self, ctx: Context, collection: str, key: str) -> None:
        ctx.stub.put_private_data(collection, key, ctx.stub.get_transient()["value"])

    @transaction
    def Purge(self, ctx: Context, collection: str, key: str) -> None:
        ctx.stub.purge_private_data(collection, key)

    @transaction
    def Delete(self, ctx: Context, collection: str, key: str) -> None:
        ctx.stub.del_private_data(collection, key)

    @transaction(evaluate=True)
    def Get(self, ctx: Context, collection: str, key: str) -> bytes:
        return ctx.stub.get_private_data(collection, key) or b""

    @transaction(evaluate=True)
    def Hash(self, ctx: Context, collection: str, key: str) -> str:
        found = ctx.stub.get_private_data_hash(collection, key)
        return found.hex() if found else ""

    @transaction
    def Touch(self, ctx: Context, key: str) -> None:
        """A public write: commits blocks for blockToLive tests."""
        ctx.stub.put_state(key, b"x")
