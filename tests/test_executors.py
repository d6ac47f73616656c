"""Process pools never outlive the run that started them: killed or interrupted, no worker stays behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support.scenarios import ROOT

#: A parent that runs four slow units on two workers; each worker writes its pid to PIDS_DIR first. It takes
#: Ctrl-C as a program started from a terminal does, whatever it inherits: a shell's background job (a CI
#: script's ``cmd &``) starts with SIGINT ignored, and Python then leaves it ignored.
PARENT = textwrap.dedent("""
    import signal
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import os, sys, time
    from pathlib import Path
    from sim.experiments.executors import execute

    def slow(i, folder):
        Path(folder, str(os.getpid())).write_text("")
        time.sleep(60)
        return i

    print("started", flush=True)
    for index, result in execute(slow, [(i, sys.argv[1]) for i in range(4)], workers=2):
        print(index, flush=True)
""")


#: The same parent, but the Ctrl-C comes to one of its other threads once both workers run: the kernel may
#: hand a process's signal to any of its threads (numpy's BLAS threads, the pool's manager thread, ...).
PARENT_INTERRUPTED_ELSEWHERE = PARENT.replace('print("started", flush=True)', textwrap.dedent("""
    import signal, threading

    def interrupt_from_another_thread(folder):
        while len(list(Path(folder).iterdir())) < 2:
            time.sleep(0.05)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)   # to this thread, not the main one

    threading.Thread(target=interrupt_from_another_thread, args=(sys.argv[1],), daemon=True).start()
    print("started", flush=True)
"""))


def _start(tmp_path: Path, parent: str = PARENT) -> tuple[subprocess.Popen, list[int]]:
    folder = tmp_path / "pids"
    folder.mkdir()
    script = tmp_path / "parent.py"
    script.write_text(parent)
    parent = subprocess.Popen([sys.executable, str(script), str(folder)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120      # loading the compiled functions, then forking
    while len(list(folder.iterdir())) < 2:
        assert time.monotonic() < deadline and parent.poll() is None, "the workers did not start"
        time.sleep(0.1)
    return parent, [int(p.name) for p in folder.iterdir()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie (dead, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    parent, workers = _start(tmp_path)
    parent.kill()                                   # kill -9: no handler of the parent runs
    parent.wait()
    assert _gone_within(workers, 10), [pid for pid in workers if _alive(pid)]


def test_interrupt_ends_the_run_and_its_workers_at_once(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) while units run: the parent stops the workers and exits within seconds instead of
    waiting for the running units (60 s each here)."""
    parent, workers = _start(tmp_path)
    start = time.monotonic()
    parent.send_signal(signal.SIGINT)
    parent.wait(timeout=20)
    assert time.monotonic() - start < 20 and parent.returncode != 0
    assert _gone_within(workers, 10), [pid for pid in workers if _alive(pid)]


def test_interrupt_given_to_another_thread_ends_the_run_too(tmp_path: Path) -> None:
    """A Ctrl-C the kernel delivers to a thread other than the main one: Python's handler only sets a flag
    there, which the main thread, waiting for the units, must still act on within seconds."""
    parent, workers = _start(tmp_path, PARENT_INTERRUPTED_ELSEWHERE)
    start = time.monotonic()
    parent.wait(timeout=20)
    assert time.monotonic() - start < 20 and parent.returncode != 0
    assert _gone_within(workers, 10), [pid for pid in workers if _alive(pid)]
