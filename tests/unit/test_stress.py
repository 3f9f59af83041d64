"""The e2e stress run (tests/stress.py): repeated runs under load, summarised per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.stress import Outcome, Row, cpu_load, main, outcomes, render, summary


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1]
    except OSError:
        return False
    return not state.startswith("Z")


def test_a_test_failing_once_in_two_runs_is_reported_with_its_first_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counter = tmp_path / "count"
    counter.write_text("0")
    module = tmp_path / "test_sample.py"
    module.write_text(
        "from pathlib import Path\n"
        f"COUNTER = Path({str(counter)!r})\n"
        "def test_steady():\n    pass\n"
        "def test_flaky():\n"
        "    n = int(COUNTER.read_text()) + 1\n"
        "    COUNTER.write_text(str(n))\n"
        "    assert n != 2, 'the second run lost a block'\n"
    )
    reports = tmp_path / "reports"
    code = main([str(module), "--runs", "2", "--load", "0", "--reports", str(reports)])
    out = capsys.readouterr().out
    assert code == 1
    assert "2 tests x 2 runs" in out
    assert "1 failed at least once" in out
    (line,) = [line for line in out.splitlines() if "test_flaky" in line]
    assert "runs=2 failures=1" in line
    assert "the second run lost a block" in line
    assert "test_steady" not in out.split("failed at least once")[1]
    assert sorted(p.name for p in reports.iterdir()) == ["run-1.xml", "run-2.xml"]


def test_a_run_without_failures_is_clean() -> None:
    steady = [Outcome("tests/e2e/test_x.py::test_steady", failed=False)]
    rows = summary([steady, steady])
    assert rows == [Row("tests/e2e/test_x.py::test_steady", 2, 0, "")]
    assert render(rows, 2, 60.0) == "stress: 1 tests x 2 runs in 1.0 min; clean"


def test_a_skipped_test_is_listed_with_its_reason() -> None:
    report = (
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.e2e.test_pg" name="test_state">'
        '<skipped type="pytest.skip" message="PostgreSQL tests need MEDALLIANCE_TEST_POSTGRES"/>'
        "</testcase>"
        '<testcase classname="tests.e2e.test_pg" name="test_ok"/>'
        "</testsuite></testsuites>"
    )
    rows = summary([outcomes(report)])
    text = render(rows, 1, 60.0)
    assert text.splitlines()[0] == "stress: 2 tests x 1 runs in 1.0 min; clean"
    assert text.splitlines()[1:] == [
        "skipped: tests/e2e/test_pg.py::test_state  runs=1 skipped=1  "
        "PostgreSQL tests need MEDALLIANCE_TEST_POSTGRES"
    ]


def test_the_load_processes_are_gone_afterwards() -> None:
    with cpu_load(2) as pids:
        assert len(pids) == 2
        assert all(_alive(pid) for pid in pids)
    assert not any(_alive(pid) for pid in pids)
    assert os.getpid() not in pids


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--runs", "0"], id="zero runs are refused"),
        pytest.param(["--load", "-1"], id="a negative load is refused"),
    ],
)
def test_nonsense_options_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
