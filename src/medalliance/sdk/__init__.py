"""A synchronous Python client for Fabric's Gateway protocol, modelled on `@hyperledger/fabric-gateway`.

    with connect("localhost:7051", signer=signer, tls_root_cert=ca_pem,
                 server_name="peer0.org1.example.com") as gateway:
        contract = gateway.get_network("mychannel").get_contract("basic")
        contract.submit_transaction("CreateAsset", "asset1", "blue", "5", "Tom", "300")
        contract.evaluate_transaction("ReadAsset", "asset1")

It speaks only the standard Gateway and Deliver services, so it also works against a Fabric
2.4+ peer. The application layer: it builds on `identity` and `ledger` only.
"""

from medalliance.sdk.checkpoint import Checkpointer, FileCheckpointer, InMemoryCheckpointer
from medalliance.sdk.contract import Contract, Status, SubmittedTransaction
from medalliance.sdk.errors import (
    CommitError,
    CommitStatusError,
    EndorseError,
    ErrorDetail,
    GatewayError,
    SubmitError,
)
from medalliance.sdk.events import ChaincodeEvent, EventStream
from medalliance.sdk.gateway import Gateway, connect
from medalliance.sdk.identity import (
    ClientMaterial,
    load_user,
    read_pem,
    signer_from_files,
    signer_from_msp,
)
from medalliance.sdk.network import Network

__all__ = [
    "ChaincodeEvent",
    "Checkpointer",
    "ClientMaterial",
    "CommitError",
    "CommitStatusError",
    "Contract",
    "EndorseError",
    "ErrorDetail",
    "EventStream",
    "FileCheckpointer",
    "Gateway",
    "GatewayError",
    "InMemoryCheckpointer",
    "Network",
    "Status",
    "SubmitError",
    "SubmittedTransaction",
    "connect",
    "load_user",
    "read_pem",
    "signer_from_files",
    "signer_from_msp",
]
