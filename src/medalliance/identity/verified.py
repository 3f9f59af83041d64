"""Memory of signatures already verified in this process.

One transaction's signatures are checked several times along its path through a peer: the
gateway checks the envelope's creator signature at Submit, validation checks it again when the
block arrives, and every policy evaluation re-verifies the signatures its caller has just
checked. ECDSA verification is the costly part (≈ 0.1 ms each); the answer is a pure function of
(public key, signature, message), so a positive answer can be remembered and reused.

The key names all three exactly: the signer's identity hash (sha256 of its certificate, hence of
its public key), the signature bytes and the sha256 of the message. A forged signature, the
right signature over other bytes, or one identity's signature presented as another's is a
different key and is verified afresh. Only successes are kept, so an attacker cannot fill the
table with failures; it is bounded and drops its oldest entries first. Certificate validity
(expiry, revocation, MSP membership) is not part of this answer: it is checked when an identity is
deserialized, at the time given there, on every call.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from medalliance.identity.signing import Signer

if TYPE_CHECKING:
    from medalliance.identity.msp import Identity

# A few blocks' worth: a gateway peer enters about five signatures per transaction at Endorse and
# Submit and reuses some when the block commits, seconds later at several hundred tx/s.
MAX_ENTRIES = 16384


class VerifiedSignatures:
    """A bounded set of (identity hash, signature, message digest) that verified."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()
        self._lock = threading.Lock()  # peers verify in worker threads too
        self.verified = 0  # ECDSA verifications actually made (for benchmarks)
        self.reused = 0

    def check(
        self, id_hash: bytes, signature: bytes, digest: bytes, verify: Callable[[], bool]
    ) -> bool:
        """`verify()`'s answer for this key, calling it only when no success is remembered.
        `digest` is the SHA-256 of the signed message (callers hash it once, for this key and
        for the verification itself)."""
        key = (id_hash, bytes(signature), digest)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.reused += 1
                return True
        ok = verify()
        with self._lock:
            self.verified += 1
            if ok:
                self._add(key)
        return ok

    def remember(self, id_hash: bytes, signature: bytes, message: bytes) -> None:
        """Record a signature this process has just made itself over exactly `message`, with
        the private key of the identity `id_hash` (callers check that the key is the one of the
        identity's certificate: `identity.signing.remember_own_signature`)."""
        with self._lock:
            self._add((id_hash, bytes(signature), hashlib.sha256(message).digest()))

    def forget(self) -> None:
        """Forget every remembered signature (a benchmark committing as a peer that endorsed
        none of the block's transactions)."""
        with self._lock:
            self._entries.clear()

    def _add(self, key: tuple[bytes, bytes, bytes]) -> None:
        self._entries[key] = None
        self._entries.move_to_end(key)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)


VERIFIED = VerifiedSignatures()


def remember_own_signature(
    identity: Identity, signer: object, signature: bytes, message: bytes
) -> bool:
    """Remember `signature`, just made by `signer` over exactly `message`, as `identity`'s;
    whether it was remembered. Only a `Signer` whose private key is the one of `identity`'s
    certificate qualifies: its signatures are low-S ECDSA-SHA256 by construction, so they would
    verify. Anything else (another signer, a key that does not match) is left to be verified."""
    if not isinstance(signer, Signer):
        return False
    if signer.private_key.public_key().public_numbers() != identity.public_key.public_numbers():
        return False
    VERIFIED.remember(identity.id_hash, signature, message)
    return True
