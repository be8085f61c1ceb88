"""No orphans: a killed audit leaves no worker process behind; SIGINT and SIGTERM stop it cleanly and a
rerun resumes.

Each test starts a real ``python -m anonaudit run`` on a tiny plate audit whose deblurring attack
computes its candidates in two worker processes (``ANONAUDIT_WORKERS=2``, :mod:`anonaudit.parallel`),
waits until those workers exist (read from ``/proc``), signals the audit and checks what is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anonaudit.cli import EXIT_SIGINT, EXIT_SIGTERM

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads processes from /proc (Linux)")

#: Metadata (instant) first, then the deblurring attack, whose candidates are computed by the workers.
CONFIG = """\
name: orphans
data: {name: synthetic_plates, n: 24, seed: 0}
auxiliary: {fraction: 0.0}
targets: [{name: gaussian_blur, sigma: 3}]
attacks:
  - {name: metadata}
  - {name: deblur_ocr, methods: [wiener, richardson_lucy], wiener_balances: [0.01], sigma_scales: [1.0], batch_size: 24}
evaluators: [ssim]
seed: 0
"""


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, parent pid)`` of a process, or None when it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # after "pid (command name)", which may hold spaces
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent to reap it has ended)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _workers(parent: int) -> list[int]:
    """The forked children of ``parent`` (same command line): its worker processes."""
    try:
        command = Path(f"/proc/{parent}/cmdline").read_bytes()
    except OSError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == parent and stat[0] != "Z":
            try:
                if (entry / "cmdline").read_bytes() == command:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _start(tmp_path: Path, **popen) -> tuple[subprocess.Popen, list[str]]:
    config = tmp_path / "audit.yaml"
    config.write_text(CONFIG)
    command = [sys.executable, "-m", "anonaudit", "run", str(config), "--output", str(tmp_path / "run"),
               "--root", str(tmp_path), "-q"]
    env = {k: v for k, v in os.environ.items() if k != "ANONAUDIT_CACHE"}
    env.update(ANONAUDIT_WORKERS="2", ANONAUDIT_PROGRESS="0")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint, **popen)
    return proc, command


def _default_sigint() -> None:
    """In the audit's process before it starts: Ctrl-C's default handling. A test run started in the
    background by a non-interactive shell inherits SIGINT ignored, which the audit (rightly) keeps."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_workers(proc: subprocess.Popen, count: int = 2, timeout: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the audit ended (rc {proc.returncode}) before its workers were seen:\n{out}\n{err}")
        workers = _workers(proc.pid)
        if len(workers) >= count:
            return workers
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no {count} worker processes within {timeout} s")


def _wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    """The processes of ``pids`` still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_sigkill_of_the_audit_takes_its_workers_with_it(tmp_path):
    proc, _ = _start(tmp_path)
    workers = _wait_for_workers(proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)  # not its output: an orphaned worker would hold the pipes open
    left = _wait_gone(workers)
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert not left, f"worker processes {left} outlived their killed parent"


@pytest.mark.parametrize("how", ["SIGTERM to the audit", "SIGINT to its process group (Ctrl-C)"])
def test_sigterm_and_sigint_stop_cleanly_and_a_rerun_resumes(tmp_path, how):
    by_group = how.startswith("SIGINT")
    proc, command = _start(tmp_path, start_new_session=True)
    workers = _wait_for_workers(proc)
    if by_group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the audit and whatever it started
        pytest.fail(f"the audit did not exit within 30 s of the {'SIGINT' if by_group else 'SIGTERM'}")
    assert proc.returncode == (EXIT_SIGINT if by_group else EXIT_SIGTERM), err
    assert f"interrupted ({'SIGINT' if by_group else 'SIGTERM'})" in err and "rerun the same command to resume" in err
    assert "Traceback" not in err  # neither the audit nor its workers print one
    assert not _wait_gone(workers, timeout=2.0)
    units = tmp_path / "run" / "units"
    assert any(p.name.startswith("attack-metadata-") for p in units.rglob("*.json"))  # kept
    assert not (tmp_path / "run" / "results.csv").exists()

    env = {k: v for k, v in os.environ.items() if k != "ANONAUDIT_CACHE"}
    rerun = subprocess.run(command, env={**env, "ANONAUDIT_PROGRESS": "0"}, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"reused 1 finished unit(s) of gaussian_blur(sigma=3) from {tmp_path / 'run'}: metadata" in rerun.stderr
    results = (tmp_path / "run" / "results.csv").read_text()
    assert "deblur_ocr" in results and "ssim" in results


@pytest.fixture
def default_signal_handlers():
    """The interpreter's own SIGINT/SIGTERM handlers for the test (a library started earlier in this
    process, e.g. Ray, may have installed its own), restored afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_an_interrupt_while_workers_start_waits_until_they_have_started(default_signal_handlers):
    """Raised inside a fork's handlers, a KeyboardInterrupt would be printed and lost: it is held back."""
    from anonaudit import parallel

    reached_end = False
    # the block must run on past the signal: the handler defers the interrupt to the end of the block
    with pytest.raises(parallel.Terminated), parallel.stop_on_signals(), parallel._interrupts_deferred():  # noqa: PT012
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the handler has run by now
        reached_end = True
    assert reached_end
    assert (
        signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
