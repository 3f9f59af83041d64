"""The client SDK's own CPU per submitted transaction, without gRPC: what `Contract.submit` does
besides its three calls.

Run: `.venv/bin/python benchmarks/sdk_submit.py [--seconds 2]`. In this process, for
`CreateAsset` as `benchmarks/e2e.py` submits it: build and sign the proposal, read the Endorse
answer (a prepared transaction with two endorsements, decoded from bytes as gRPC does), sign the
transaction for Submit, build and sign the CommitStatus request. Each step runs for `--seconds`;
prints CPU µs per step and their sum, each also "besides signing" (the same steps with a
preset signature: the SDK's own Python, steadier on a shared machine than the total), and what
the three ECDSA signatures cost. The gRPC calls themselves are `benchmarks/protocol_floor.py`'s "sync" part. Asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from typing import Literal

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2

from medalliance.identity import Signer
from medalliance.identity.ca import CertificateAuthority
from medalliance.ledger.tx import (
    SigningIdentity,
    new_proposal_response,
    new_transaction_payload,
    parse_signed_proposal,
)
from medalliance.sdk.client import new_nonce, now_ms
from medalliance.sdk.messages import (
    PreparedTransaction,
    Proposal,
    endorse_request,
    new_proposal,
    read_endorse_response,
    signed_commit_status_request,
    submit_request,
)

ARGUMENTS = ("bench1", "blue", "5", "Ana", "100")


def cpu_us(operation: Callable[[], object], seconds: float) -> float:
    """CPU µs per call of `operation`, repeated for about `seconds` of CPU."""
    calls, began = 0, time.process_time()
    while (spent := time.process_time() - began) < seconds:
        for _ in range(100):
            operation()
        calls += 100
    return spent * 1e6 / calls


def signer(msp_id: str, name: str, ou: Literal["client", "peer"]) -> Signer:
    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority.create(f"ca.{msp_id}", msp_id, now=now)
    issued = ca.issue(f"{name}@{msp_id}", node_ou=ou, now=now)
    return Signer.from_pem(msp_id, issued.cert_pem, issued.key_pem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per step")
    seconds = parser.parse_args().seconds
    user = signer("Org1MSP", "User1", "client")
    endorsers = [signer("Org1MSP", "peer0", "peer"), signer("Org2MSP", "peer0", "peer")]

    sample = create_asset(user)
    view = parse_signed_proposal(sample.signed)
    responses = [
        new_proposal_response(
            view,
            endorser,
            chaincode_version="1.0",
            status=200,
            message="",
            payload=b"",
            rwset=b"\x12" * 300,
            event=None,
        )
        for endorser in endorsers
    ]
    envelope = common_pb2.Envelope(payload=new_transaction_payload(view, responses))
    answer = gateway_pb2.EndorseResponse(prepared_transaction=envelope).SerializeToString()
    prepared = read_endorse_response(sample, gateway_pb2.EndorseResponse.FromString(answer))
    signed = steps(user, sample, answer, prepared)
    costs = {name: cpu_us(step, seconds) for name, step in signed.items()}
    unsigned = steps(PresetSignature(user), sample, answer, prepared)
    besides = {name: cpu_us(step, seconds) for name, step in unsigned.items()}
    sign = cpu_us(lambda: user.sign(envelope.payload), seconds)
    print(f"{'':32} {'total':>8} {'besides signing':>16}")
    for name, us in costs.items():
        print(f"{name:32} {us:6.1f} µs {besides[name]:13.1f} µs")
    total = sum(costs.values())
    print(
        f"{'SDK work per submit':32} {total:6.1f} µs {sum(besides.values()):13.1f} µs; "
        f"3 ECDSA signatures ≈ {3 * sign:.0f} µs"
    )


def create_asset(identity: SigningIdentity) -> Proposal:
    return new_proposal(
        identity,
        channel_id="mychannel",
        chaincode_name="basic",
        transaction_name="CreateAsset",
        arguments=ARGUMENTS,
        transient=None,
        nonce=new_nonce(),
        timestamp_ms=now_ms(),
    )


class PresetSignature:
    """`identity` with a fixed signature of a real one's length: what the SDK spends besides
    ECDSA, which varies more from run to run than the rest on a shared machine."""

    def __init__(self, identity: SigningIdentity) -> None:
        self.serialized_identity = identity.serialized_identity
        self._signature = identity.sign(b"preset")

    def sign(self, message: bytes) -> bytes:
        return self._signature


def steps(
    identity: SigningIdentity, sample: Proposal, answer: bytes, prepared: PreparedTransaction
) -> dict[str, Callable[[], object]]:
    return {
        "proposal (built, signed)": lambda: create_asset(identity),
        "Endorse request": lambda: endorse_request(sample, None).SerializeToString(),
        "Endorse answer read": lambda: read_endorse_response(
            sample, gateway_pb2.EndorseResponse.FromString(answer)
        ),
        "Submit request (signed)": lambda: submit_request(prepared, identity).SerializeToString(),
        "CommitStatus request (signed)": lambda: signed_commit_status_request(
            identity, transaction_id=prepared.transaction_id, channel_id="mychannel"
        ).SerializeToString(),
    }


if __name__ == "__main__":
    main()
