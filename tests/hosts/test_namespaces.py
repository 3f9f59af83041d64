"""The host helpers themselves: a missing capability skips with its reason (fails in CI), and a
crashed run's namespaces and links are swept while a live run's are kept."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.hosts.namespaces import LINK_PREFIX, PREFIX, REQUIRE_ENV, require_namespaces, sweep_stale
from tests.networks import wait_until


@pytest.mark.parametrize(
    ("required", "outcome"),
    [
        pytest.param("", pytest.skip.Exception, id="without iproute2 the host tests skip"),
        pytest.param("1", pytest.fail.Exception, id="without iproute2 CI fails the host tests"),
    ],
)
def test_a_machine_without_iproute2_is_named_as_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, required: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `ip` on it
    monkeypatch.setenv(REQUIRE_ENV, required)
    with pytest.raises(outcome, match="iproute2"):
        require_namespaces()


def test_a_crashed_runs_namespaces_and_links_are_swept_and_a_live_runs_kept() -> None:
    require_namespaces()
    finished = subprocess.Popen(["true"])
    finished.wait()  # its pid is a run that is gone (pids are not reused this soon)
    dead, live = finished.pid, os.getpid()
    names = [f"{PREFIX}{dead}-0", f"{PREFIX}{live}-0"]
    links = [f"{LINK_PREFIX}{dead}br", f"{LINK_PREFIX}{live}br"]
    left: subprocess.Popen[bytes] | None = None
    try:
        for name, link in zip(names, links, strict=True):
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
        left = subprocess.Popen(["ip", "netns", "exec", names[0], "sleep", "300"])  # a leaked node
        wait_until(lambda: _pids(names[0]) != [], "the leaked process runs inside")
        sweep_stale()
        assert left.wait(timeout=30) == -signal.SIGKILL
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        shown = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert (names[0] in listed, names[1] in listed) == (False, True)
        assert (f" {links[0]}:" in shown, f" {links[1]}:" in shown) == (False, True)
    finally:
        if left is not None and left.poll() is None:
            left.kill()
        for name, link in zip(names, links, strict=True):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            subprocess.run(["ip", "link", "del", link], capture_output=True)


def _pids(netns: str) -> list[str]:
    return subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True
    ).stdout.split()
