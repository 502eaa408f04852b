"""One writer per output folder: a lock file with stale-lock handling.

`output_lock(root)` creates ``root/.skillpulse.lock`` atomically (O_EXCL) holding the
owner's pid, host and start time. A second run on the same folder waits up to
`wait_seconds` and then refuses with a clear message. A lock left by a process that
no longer exists on this host is stale and is taken over. The lock is re-entrant
within one process, so the pipeline flow and the stage flows it calls share it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from extractors.errors import SkillpulseError
from flows import storage

LOCK_NAME = ".skillpulse.lock"
_held: dict[str, int] = {}
_guard = threading.Lock()


class OutputLockedError(SkillpulseError):
    """Another run is writing to the same output folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_create(path: storage.Location, run_id: str) -> bool:
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id,
             "since": datetime.now(UTC).isoformat(timespec="seconds")}
    return storage.create_exclusive(path, json.dumps(owner).encode("utf-8"))


def _owner(path: storage.Location) -> dict[str, object]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _is_stale(owner: dict[str, object]) -> bool:
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    return not _alive(pid)


@contextmanager
def output_lock(root: str | storage.Location, run_id: str = "", wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the output folder's lock for the duration of the block.

    Raises:
        OutputLockedError: another live process holds the lock after `wait_seconds`.
    """
    root = storage.root(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    key = str(path.resolve())
    with _guard:
        if key in _held:
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if not reentered:
        deadline = time.monotonic() + wait_seconds
        while not _try_create(path, run_id):
            owner = _owner(path)
            if _is_stale(owner):
                path.unlink(missing_ok=True)
                continue
            if time.monotonic() >= deadline:
                raise OutputLockedError(
                    f"[L001] {root} is in use by run {owner.get('run_id') or '?'} "
                    f"(pid {owner.get('pid', '?')} on {owner.get('host', '?')}, since {owner.get('since', '?')}): "
                    f"wait for it to finish, or delete {path} if that process is gone"
                )
            time.sleep(0.5)
        with _guard:
            _held[key] = 1
    try:
        yield
    finally:
        with _guard:
            _held[key] -= 1
            last = _held[key] == 0
            if last:
                del _held[key]
        if last:
            path.unlink(missing_ok=True)
