"""The consenters of one channel by name: their serialized identities and, read through the
channel's MSPs, their signing identities (for verifying consensus messages).

Names stay known after a reconfiguration (a certificate of an earlier set still names its
voters); the parsed identities are re-read after each, since a changed MSP may have revoked a
certificate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from medalliance.errors import MedallianceError
from medalliance.identity.msp import Identity
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.commit_certificate import Consenter
from medalliance.node.consensus_inbox import RejectedMessage


class ConsenterIdentities:
    def __init__(
        self,
        config: Callable[[], ChannelConfig],
        now: Callable[[], dt.datetime],
        consenters: Iterable[Consenter],
    ) -> None:
        self._config = config
        self._now = now
        self.bytes_of: dict[str, bytes] = {}  # serialized identity by consenter name
        self.name_of: dict[bytes, str] = {}  # consenter name by serialized identity
        self._parsed: dict[str, Identity] = {}
        self.update(consenters)

    def update(self, consenters: Iterable[Consenter]) -> None:
        for consenter in consenters:
            self.bytes_of[consenter.name] = consenter.identity
            self.name_of[consenter.identity] = consenter.name
        self._parsed.clear()  # re-read: a changed MSP may have revoked a certificate

    def identity(self, name: str) -> Identity:
        """A consenter's signing identity, as the channel's MSPs read it now."""
        config = self._config()
        if name not in self.bytes_of:
            raise RejectedMessage(
                "not-consenter", f"{name} is not a consenter of {config.channel_id}"
            )
        if name not in self._parsed:
            try:
                self._parsed[name] = config.msps.deserialize(self.bytes_of[name], at=self._now())
            except MedallianceError as exc:  # expired or revoked since it was configured
                raise RejectedMessage(
                    "bad-signature", f"the identity of {name} is not valid: {exc}"
                ) from None
        return self._parsed[name]
