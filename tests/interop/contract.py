"""A small contract for the Node gateway interop tests: what `basic` cannot show.

`Put` emits a chaincode event, `PutSecret` takes its input from the transient map and stores only
a digest of it, so a test can check that the secret never reaches a block. The network's nodes
import it as `tests.interop.contract:InteropContract`.
"""

from __future__ import annotations

import hashlib

from medalliance.contracts import Context, Contract, transaction
from medalliance.errors import ContractError


class InteropContract(Contract):
    name = "interop"

    @transaction
    def Put(self, ctx: Context, key: str, value: str) -> str:
        """Write `value` under `key` and emit the event "Put" whose payload is the key."""
        ctx.stub.put_state(key, value.encode())
        ctx.stub.set_event("Put", key.encode())
        return value

    @transaction(evaluate=True)
    def Get(self, ctx: Context, key: str) -> str:
        value = ctx.stub.get_state(key)
        if value is None:
            raise ContractError(f"the key {key} does not exist")
        return value.decode()

    @transaction
    def PutSecret(self, ctx: Context, key: str) -> str:
        """Store the SHA-256 (hex) of the transient field "secret" under `key`; return the hash."""
        secret = ctx.transient.get("secret")
        if not secret:
            raise ContractError('the transient field "secret" is required', 400)
        digest = hashlib.sha256(secret).hexdigest()
        ctx.stub.put_state(key, digest.encode())
        return digest
