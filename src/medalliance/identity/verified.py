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

MAX_ENTRIES = 8192  # a few blocks' worth of transactions, each with a handful of signatures


class VerifiedSignatures:
    """A bounded set of (identity hash, signature, message digest) that verified."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._entries: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()
        self._lock = threading.Lock()  # peers verify in worker threads too
        self.verified = 0  # ECDSA verifications actually made (for benchmarks)
        self.reused = 0

    def check(
        self, id_hash: bytes, signature: bytes, message: bytes, verify: Callable[[], bool]
    ) -> bool:
        """`verify()`'s answer for this key, calling it only when no success is remembered."""
        key = (id_hash, bytes(signature), hashlib.sha256(message).digest())
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.reused += 1
                return True
        ok = verify()
        with self._lock:
            self.verified += 1
            if ok:
                self._entries[key] = None
                if len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return ok


VERIFIED = VerifiedSignatures()
