"""``adtrack serve --workers``: a number, or ``auto`` (every usable core but one)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from adtrack.cli.main import app
from adtrack.worker_count import resolve_workers, usable_cpus


def auto_under_taskset(cores: str, reserve: int) -> int:
    code = (
        "from adtrack.worker_count import resolve_workers; "
        f"print(resolve_workers('auto', reserve={reserve}))"
    )
    taskset = shutil.which("taskset")
    assert taskset is not None, "taskset (util-linux) is missing"
    out = subprocess.run(
        [taskset, "-c", cores, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(out.stdout)


def test_auto_follows_the_cores_this_process_may_use() -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0))
    assert auto_under_taskset("0", reserve=0) == 1
    if usable_cpus() >= 2:
        assert auto_under_taskset("0,1", reserve=0) == 2
        assert auto_under_taskset("0,1", reserve=1) == 1
    assert auto_under_taskset("0", reserve=1) == 1  # never fewer than one collector


def test_numbers_are_taken_as_they_are() -> None:
    assert resolve_workers("3") == 3
    assert resolve_workers(" 1 ") == 1


@pytest.mark.parametrize("value", ["0", "-1", "two", "\u00b2", "1.5", "", "2000"])
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="auto"):
        resolve_workers(value)


@pytest.mark.parametrize("args", [["--workers", "zero"], ["--single-process", "--workers", "2"]])
def test_serve_refuses_bad_workers_before_starting(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["serve", "--port", "0", *args])
    assert result.exit_code == 2
    assert "--workers" in result.output
