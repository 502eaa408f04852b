from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flows.lock import LOCK_NAME, OutputLockedError, output_lock


def test_lock_refuses_a_second_writer_from_another_process(tmp_path: Path) -> None:
    code = (
        "import sys, time; from flows.lock import output_lock\n"
        "with output_lock(sys.argv[1], 'other-run'):\n    print('locked', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLockedError, match=r"\[L001\] .* is in use by run other-run \(pid \d+"):
            with output_lock(tmp_path, "mine", wait_seconds=1):
                pass
    finally:
        proc.kill()
        proc.wait()
    # the killed holder left its lock behind: it is stale and is taken over
    assert (tmp_path / LOCK_NAME).exists()
    with output_lock(tmp_path, "mine"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["run_id"] == "mine"
    assert not (tmp_path / LOCK_NAME).exists()


def test_lock_is_reentrant_in_one_process(tmp_path: Path) -> None:
    with output_lock(tmp_path, "a"):
        with output_lock(tmp_path, "a"):
            assert (tmp_path / LOCK_NAME).exists()
        assert (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()


def test_lock_of_another_host_is_never_taken_over(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text(
        json.dumps({"pid": 1, "host": socket.gethostname() + "-elsewhere", "run_id": "x"})
    )
    with pytest.raises(OutputLockedError, match="in use by run x"):
        with output_lock(tmp_path, "mine"):
            pass
    assert os.path.exists(tmp_path / LOCK_NAME)
