"""Test hosts as Linux network namespaces: one bridge, one veth pair and one address per host.

Owns creating and removing them (names carry this run's pid, so a crashed run never blocks the
next and `sweep_stale` removes what a dead run left), partitions (a host's link set down on the
bridge side, healed by setting it up) and the commands that run inside a host. Needs root (or
CAP_NET_ADMIN) and iproute2; `require_namespaces` skips with the reason where the kernel or the
user cannot make namespaces, and fails instead when MEDALLIANCE_REQUIRE_NETNS=1 (CI).

Traffic only ever goes to the addresses made here (10.23.X.0/24 on our own bridge).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

PREFIX = "medalliance-host-"  # namespaces: medalliance-host-<pid>-<index>
LINK_PREFIX = "mah"  # links (15 characters at most): mah<pid>br, mah<pid>v<index>
REQUIRE_ENV = "MEDALLIANCE_REQUIRE_NETNS"
_NETNS = re.compile(rf"^{PREFIX}(\d+)-\d+$")
_LINK = re.compile(rf"^{LINK_PREFIX}(\d+)(br|v\d+)$")


@dataclass(frozen=True, slots=True)
class Host:
    """One machine of the alliance: a namespace with `address` on its `eth0`."""

    name: str  # the organisation whose nodes run here
    netns: str
    address: str
    bridge_port: str  # the root-namespace end of its veth pair, on the bridge

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside this host."""
        return ["ip", "netns", "exec", self.netns, *argv]


@dataclass(frozen=True, slots=True)
class HostNetwork:
    """The hosts on one bridge; the root namespace reaches them at `gateway` (the clients'
    machine and where the tests' TCP proxies listen)."""

    bridge: str
    gateway: str
    hosts: dict[str, Host]

    def partition(self, *names: str) -> None:
        """Cut the named hosts off: nothing reaches them or leaves them until `heal`."""
        for name in names:
            _ip("link", "set", self.hosts[name].bridge_port, "down")

    def heal(self, *names: str) -> None:
        """Reconnect the named hosts (every host when none are named)."""
        for name in names or tuple(self.hosts):
            _ip("link", "set", self.hosts[name].bridge_port, "up")


def require_namespaces() -> None:
    """Skip (or fail under MEDALLIANCE_REQUIRE_NETNS=1) unless this process can make a network
    namespace; the reason names what is missing."""
    reason = _missing_capability()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)")
    pytest.skip(reason)


@contextlib.contextmanager
def host_network(names: Sequence[str]) -> Iterator[HostNetwork]:
    """A bridge with one host per name (10.23.X.11, .12, ...), removed on exit whatever
    happened inside; processes still running inside a removed namespace keep it until they
    exit, so stop them first."""
    sweep_stale()
    pid = os.getpid()
    bridge = f"{LINK_PREFIX}{pid}br"
    subnet = _free_subnet()
    gateway = f"{subnet}.1"
    hosts: dict[str, Host] = {}
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{gateway}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for index, name in enumerate(names):
            host = Host(
                name,
                f"{PREFIX}{pid}-{index}",
                f"{subnet}.{11 + index}",
                f"{LINK_PREFIX}{pid}v{index}",
            )
            _add_host(host, bridge, gateway)
            hosts[name] = host
        yield HostNetwork(bridge, gateway, hosts)
    finally:
        for host in hosts.values():
            _ip("netns", "del", host.netns, check=False)
        _ip("link", "del", bridge, check=False)


def sweep_stale() -> None:
    """Remove namespaces and links of ours whose run (its pid) is gone, killing what still runs
    inside those namespaces (only a dead run's test nodes can)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split(" ", 1)[0]
        found = _NETNS.match(name)
        if found and not _alive(int(found.group(1))):
            # Nodes a killed run left behind would keep the namespace (and run) forever.
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
            for pid in pids.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", name, check=False)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(": ")[1].split("@")[0] if ": " in line else ""
        found = _LINK.match(name)
        if found and not _alive(int(found.group(1))):
            _ip("link", "del", name, check=False)


def _add_host(host: Host, bridge: str, gateway: str) -> None:
    inner = f"{host.bridge_port}i"  # renamed eth0 once inside the namespace
    _ip("netns", "add", host.netns)
    _ip("link", "add", host.bridge_port, "type", "veth", "peer", "name", inner)
    _ip("link", "set", host.bridge_port, "master", bridge)
    _ip("link", "set", host.bridge_port, "up")
    _ip("link", "set", inner, "netns", host.netns)
    in_ns = ("-n", host.netns)
    _ip(*in_ns, "link", "set", inner, "name", "eth0")
    _ip(*in_ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
    _ip(*in_ns, "link", "set", "eth0", "up")
    _ip(*in_ns, "link", "set", "lo", "up")
    _ip(*in_ns, "route", "add", "default", "via", gateway)


def _free_subnet() -> str:
    """10.23.X for an X no address of this machine uses (concurrent runs pick different X)."""
    used = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    for offset in range(254):
        subnet = f"10.23.{(os.getpid() + offset) % 254 + 1}"
        if f" {subnet}." not in used:
            return subnet
    raise AssertionError("no free 10.23.X.0/24 subnet for the test hosts")


def _missing_capability() -> str | None:
    if shutil.which("ip") is None:
        return "the host tests need iproute2's `ip` (Debian package iproute2)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace (needs root or CAP_NET_ADMIN): {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ip(*argv: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *argv], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"ip {' '.join(argv)} failed: {result.stderr.strip()}")
