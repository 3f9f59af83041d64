"""What the web application talks to: the alliance, the served organisations and their stores.

`WebBackend` is built either over the embedded demo alliance (one process serves every demo
organisation; login chooses the organisation) or over one organisation of a network of processes
(`serve --dir DIR --org ORG`: only that organisation's key material is used, through the
Gateway of its own peer). Any other organisation is refused with `PermissionDenied`.

The embedded network is not thread-safe (its stores are SQLite connections bound to the thread
that opened them) while FastAPI runs sync routes in a thread pool, so every alliance call goes
through `ConfinedAlliance`, which runs it on one dedicated thread and waits for the answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from fabric_protos.common import common_pb2

from medalliance.app.alliance_network import (
    AllianceNetwork,
    Committed,
    EmbeddedAlliance,
    GatewayAlliance,
)
from medalliance.app.demo import CHANNEL, default_config_path
from medalliance.app.hospital_store import open_store_of
from medalliance.database_url import DatabaseUrl, parse_database_url
from medalliance.errors import ConfigError, PermissionDenied
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.node import launcher
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.config import NetworkConfig, load_network_config
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.node.package_holding import Held
from medalliance.web.accounts import AccountStore
from medalliance.web.events import EventHub

log = logging.getLogger(__name__)
T = TypeVar("T")
ACCOUNTS_FILE = "web-accounts.db"


class ConfinedAlliance:
    """An `AllianceNetwork` whose every call runs on one thread, for the served orgs only."""

    def __init__(self, inner: AllianceNetwork, organizations: tuple[str, ...]) -> None:
        self.inner = inner
        self.layout = inner.layout
        self.channel = inner.channel
        self._served = set(organizations) | {
            self.layout.config.organization(o).msp_id for o in organizations
        }
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alliance")
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the alliance thread (directly when already on it)."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        return self._pool.submit(self._on_thread, fn, *args).result()

    def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        self._thread = threading.current_thread()
        return fn(*args)

    def check(self, org: str) -> None:
        if org not in self._served:
            raise PermissionDenied(f"this server does not act for {org}")

    def submit(self, org: str, user: str, contract: str, function: str, *args: str) -> Committed:
        self.check(org)
        return self.run(self.inner.submit, org, user, contract, function, *args)

    def evaluate(self, org: str, user: str, contract: str, function: str, *args: str) -> bytes:
        self.check(org)
        return self.run(self.inner.evaluate, org, user, contract, function, *args)

    def push(self, org: str, held: Held) -> None:
        self.check(org)
        self.run(self.inner.push, org, held)

    def pull(self, org: str, user: str, record_id: str, version: int) -> Held:
        self.check(org)
        return self.run(self.inner.pull, org, user, record_id, version)

    def evaluate_pseudonyms(self, org: str, user: str, elements: list[bytes]) -> list[bytes]:
        self.check(org)
        return self.run(self.inner.evaluate_pseudonyms, org, user, elements)

    def holds(self, org: str, user: str, record_id: str) -> int:
        self.check(org)
        return self.run(self.inner.holds, org, user, record_id)

    def blocks(self, org: str, start: int, until: int | None) -> Iterator[common_pb2.Block]:
        """Blocks through `until` (None: the current height), read whole on the alliance thread."""
        self.check(org)
        return iter(self.run(lambda: list(self.inner.blocks(org, start, until))))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class WebBackend:
    """The alliance, accounts, stores and live events one web server uses."""

    def __init__(
        self,
        alliance: AllianceNetwork,
        organizations: tuple[str, ...],
        accounts: AccountStore,
        *,
        on_close: Callable[[], None] = lambda: None,
    ) -> None:
        self.layout: NetworkLayout = alliance.layout
        self.config: NetworkConfig = alliance.layout.config
        self.organizations = tuple(self.config.organization(o).name for o in organizations)
        self.network = ConfinedAlliance(alliance, self.organizations)
        self.accounts = accounts
        self.events = EventHub(self.config)
        self._stores: dict[str, ClinicalStore] = {}
        self._stores_lock = threading.Lock()
        self._on_close = on_close

    def serves(self, org: str) -> bool:
        """Whether this server acts for `org` (a name or MSP id)."""
        try:
            return self.config.organization(org).name in self.organizations
        except ConfigError:  # an unknown organisation is simply not served
            return False

    def store(self, org: str) -> ClinicalStore:
        """The organisation's clinical store (opened once); `PermissionDenied` if not served."""
        if not self.serves(org):
            raise PermissionDenied(f"this server does not act for {org}")
        name = self.config.organization(org).name
        with self._stores_lock:
            if name not in self._stores:
                self._stores[name] = open_store_of(self.layout, name)
            return self._stores[name]

    def close(self) -> None:
        self.network.close()
        with self._stores_lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
        self.accounts.close()
        self._on_close()

    # --- constructors -----------------------------------------------------------------------

    @classmethod
    def embedded(
        cls, data_dir: Path, config_path: Path | None = None, accounts_url: str | None = None
    ) -> WebBackend:
        """Every organisation of the embedded alliance in `data_dir` (created the first time
        from `config_path`, default the demo alliance)."""
        config = load_network_config(config_path or default_config_path())
        network = EmbeddedNetwork.open(config, data_dir)
        alliance = EmbeddedAlliance(network, CHANNEL)
        accounts = AccountStore(accounts_location(data_dir, accounts_url))

        def close() -> None:
            alliance.close()
            network.close()

        backend = cls(
            alliance, tuple(o.name for o in config.organizations), accounts, on_close=close
        )
        # Every peer of the one channel commits the same blocks: listen on one.
        peer = network.peers_of(CHANNEL)[0]
        peer.channel(CHANNEL).add_listener(backend.events.committed)
        return backend

    @classmethod
    def of_organization(
        cls, directory: Path, org: str, accounts_url: str | None = None
    ) -> WebBackend:
        """One organisation of a running network of processes in `directory`."""
        alliance = GatewayAlliance(directory, CHANNEL)
        name = alliance.layout.config.organization(org).name
        accounts = AccountStore(accounts_location(directory, accounts_url))
        stop = threading.Event()
        backend = cls(alliance, (name,), accounts, on_close=lambda: _stop(stop, alliance))
        threading.Thread(
            target=_follow_blocks, args=(alliance, name, backend.events, stop),
            name="web-events", daemon=True,
        ).start()  # fmt: skip
        return backend


def accounts_location(directory: Path, url: str | None) -> DatabaseUrl:
    """The accounts database: `url` (a path relative to `directory` or postgresql://...),
    default `DIR/web-accounts.db`."""
    if url:
        return parse_database_url(url, base=directory)
    return DatabaseUrl("sqlite", path=directory / ACCOUNTS_FILE)


def _stop(stop: threading.Event, alliance: GatewayAlliance) -> None:
    stop.set()
    alliance.close()


def _height(layout: NetworkLayout, msp_id: str) -> int:
    """The own peer's height on the channel, from its operations endpoint (0 when it cannot
    say: then every block is read once and only new ones matter to browsers)."""
    peers = [n for n in launcher.nodes_of(layout) if n.organization == msp_id and n.role == "peer"]
    answer = launcher.probe(peers[0], timeout=5.0) if peers else None
    height = (answer or {}).get("channels", {}).get(CHANNEL)
    return height if isinstance(height, int) else 0


def _follow_blocks(
    alliance: GatewayAlliance, org: str, hub: EventHub, stop: threading.Event
) -> None:
    """Publish the facts of every block the organisation's peer commits from now on."""
    try:
        start = _height(alliance.layout, alliance.layout.config.organization(org).msp_id)
        for block in alliance.blocks(org, start, None):
            if stop.is_set():
                return
            hub.publish_block(block)
    except Exception:  # the stream ends when the server closes; an outage only stops live updates
        if not stop.is_set():
            log.warning("live events stopped: the peer's block stream ended", exc_info=True)
