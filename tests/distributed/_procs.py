"""Finding the processes a launch test started, by a token in their command line (private).

Shared by ``test_launch.py`` and ``test_launch_stop.py``; every wait is bounded, and
what outlives its bound is killed.
"""

import contextlib
import os
import signal
import sys
import time


def running(token, *, exclude=None):
    """The pids of the processes whose command line holds ``token`` (and not ``exclude``)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    line = f.read()
                if token.encode() in line and not (exclude and exclude.encode() in line):
                    pids.append(int(name))
            except OSError:
                pass
    return pids


def launched(token, count, timeout_s=60, launcher=None):
    """Waits until ``count`` launched processes hold ``token``; raises AssertionError if not.

    Without ``launcher`` a process whose command line names ``distributed.launch`` is left
    out (a launcher, or a child forked but not yet ``exec``'d, which still shows its
    command line). With ``launcher`` (its ``Popen``, stderr piped) its children are
    counted by their parent pid as well as by ``token``: a child counts from the fork (a
    launcher signalled then defers the signal until the child exists:
    ``launcher._run``), even while its command line cannot be read (in CI one child
    mid-``exec`` showed no ``token`` for 60 s, though it was listed as the launcher's
    child at once after); the error says whether the launcher had ended, and what it
    wrote then.
    """
    if launcher is None:
        children = lambda: set(running(token, exclude="distributed.launch"))
    else:
        by_parent = lambda: {pid for pid, _, _ in _children_of(launcher.pid)}
        children = lambda: (set(running(token)) | by_parent()) - {launcher.pid}
    end = time.monotonic() + timeout_s
    while len(children()) < count and time.monotonic() < end:
        time.sleep(0.1)
    found = len(children())
    if found != count:
        status = None if launcher is None else launcher.poll()
        said = launcher.stderr.read().decode()[-2000:] if status is not None else ""
        kids = "" if launcher is None else f"; its children: {_children_of(launcher.pid)}"
        raise AssertionError(
            f"the launched processes did not start ({found} of {count} after {timeout_s} s; "
            f"the launcher's exit status: {status}; its stderr: {said!r}{kids})"
        )


def _children_of(pid):
    """``[(pid, state, command line's end)]`` of ``pid``'s children (by their parent pid)."""
    out = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            with open(f"/proc/{name}/stat") as f:
                stat = f.read().rpartition(")")[2].split()
            if int(stat[1]) == pid:
                out.append((int(name), stat[0], _command_line(name)[-120:]))
    return out


def _command_line(pid):
    """``pid``'s command line, spaces between its arguments; "?" where it cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


def gone(token, timeout_s):
    """Whether every process holding ``token`` has ended within ``timeout_s`` (else kill)."""
    end = time.monotonic() + timeout_s
    while running(token) and time.monotonic() < end:
        time.sleep(0.1)
    left = running(token)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return not left


def sleeper(token):
    """A Python process that sleeps for a minute, ``token`` in its command line."""
    return [sys.executable, "-c", f"import time; time.sleep(60)  # {token}"]
