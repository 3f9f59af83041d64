"""An access attempt that bypasses the contract: what a hospital that is not authorised for a
record can still put on the chain, and what the chain does with it.

The records contract refuses a `LogAccess` by an organisation that is not authorised (the
endorsers never sign it). A hospital that wants the attempt on the ledger anyway — or simply a
broken client — can build the transaction itself: the access entry it would have written,
"endorsed" by its own peer only, sent straight to the ordering service. Ordering accepts it
(orderers do not validate endorsements); every peer marks it invalid (the contract's
endorsement policy needs a commission and a hospital), so it writes nothing, yet the ledger
keeps it with its validation code — the trace the audit module reads (`tx.invalid` facts).

Used by the month generator (app/activity_generator.py) on an embedded network.
"""

from __future__ import annotations

import json
import os

from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2

from medalliance.contracts import create_composite_key
from medalliance.identity.cryptogen import load_signer
from medalliance.ledger.tx import (
    new_proposal_response,
    new_signed_proposal,
    new_transaction_payload,
    parse_signed_proposal,
    sign_envelope,
)
from medalliance.node.embedded import EmbeddedNetwork


def forge_access(
    network: EmbeddedNetwork, channel_id: str, org: str, user: str, record_id: str
) -> str:
    """Broadcast a self-endorsed `LogAccess(record_id, "1", "decrypt")` by `user` of `org`;
    its tx id. The caller cuts the block and reads the validation code."""
    msp_id = network.config.organization(org).msp_id
    signer = network.signer(msp_id, user)
    peer = next(p for p in network.config.organization(org).peers)
    peer_signer = load_signer(network.layout.peer_dir(msp_id, peer.name) / "msp", msp_id)
    signed, tx_id = new_signed_proposal(
        signer,
        channel_id=channel_id,
        chaincode="records",
        args=[b"LogAccess", record_id.encode(), b"1", b"decrypt"],
        nonce=os.urandom(24),
        timestamp_ms=int(network.now().timestamp() * 1000),
    )
    view = parse_signed_proposal(signed)
    entry = {"recordId": record_id, "version": 1, "action": "decrypt", "org": msp_id,
             "txId": tx_id}  # fmt: skip
    writes = kv_rwset_pb2.KVRWSet(
        writes=[
            kv_rwset_pb2.KVWrite(
                key=create_composite_key("access", [record_id, tx_id]),
                value=json.dumps(entry, sort_keys=True).encode(),
            )
        ]
    )
    rwset = rwset_pb2.TxReadWriteSet(
        data_model=rwset_pb2.TxReadWriteSet.DataModel.Value("KV"),
        ns_rwset=[rwset_pb2.NsReadWriteSet(namespace="records", rwset=writes.SerializeToString())],
    )
    response = new_proposal_response(
        view, peer_signer, chaincode_version="1.0", status=200, message="",
        payload=json.dumps(entry).encode(), rwset=rwset.SerializeToString(), event=None,
    )  # fmt: skip
    network.broadcast(channel_id, sign_envelope(new_transaction_payload(view, [response]), signer))
    return tx_id
