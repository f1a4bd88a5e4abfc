"""Starting a launched process so that it dies with its launcher (private, Linux).

Split out of :mod:`nnjax.distributed.launcher`. Each process starts as a small
Python (:data:`_DIE_WITH_LAUNCHER`) that asks the kernel for SIGKILL when the launcher
dies, then ``exec``s the command: a launcher killed by SIGKILL (where it can stop
nothing) leaves no orphans.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from collections.abc import Mapping, Sequence

#: Run as ``python -c _DIE_WITH_LAUNCHER LAUNCHER_PID LC_CTYPE PROGRAM ARGV...`` (Linux):
#: asks for SIGKILL when the launcher dies (``prctl(PR_SET_PDEATHSIG)``, kept across
#: ``exec``), ends at once if it has died already, then becomes ``PROGRAM`` (no
#: ``preexec_fn``: a fork of a multithreaded process running Python code before ``exec``
#: can deadlock). Before the ``exec`` it undoes what Python's start-up did to the
#: process: SIGPIPE and SIGXFSZ ignored (an ``exec`` keeps that: ``yes | head`` would
#: print "Broken pipe"), ``LC_CTYPE`` set by its locale coercion (``LC_CTYPE`` is
#: ``"-"`` where the caller's environment had none, else ``"=" + value``). A program
#: that cannot be run (no ``#!`` line) is one line naming it, status 126.
_DIE_WITH_LAUNCHER = """import os, signal, sys
for name in ("SIGPIPE", "SIGXFSZ"):
    signal.signal(getattr(signal, name), signal.SIG_DFL)
if sys.argv[2] == "-":
    os.environ.pop("LC_CTYPE", None)
else:
    os.environ["LC_CTYPE"] = sys.argv[2][1:]
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
except Exception:
    pass
else:
    if os.getppid() != int(sys.argv[1]):  # the launcher died before the request
        os.kill(os.getpid(), signal.SIGKILL)
try:
    os.execv(sys.argv[3], sys.argv[4:])
except OSError as err:
    sys.stderr.write(f"nnjax launch: cannot run {sys.argv[4]}: {err.strerror}\\n")
    os._exit(126)
"""


def tied_to_launcher(command: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``command``, started on Linux through a small Python that dies with the launcher.

    The kernel sends it SIGKILL when the launcher's thread that started it ends
    (``launch`` returns only after its processes have ended): a launcher killed by
    SIGKILL leaves no orphans. Elsewhere, ``command`` as it is.

    Raises:
      FileNotFoundError: no program ``command[0]`` on ``env``'s ``PATH`` (as
        ``subprocess.Popen`` says).
    """
    if not sys.platform.startswith("linux") or not sys.executable:
        return list(command)
    program = _program(command[0], env)
    lc_ctype = "-" if "LC_CTYPE" not in env else "=" + env["LC_CTYPE"]
    pid = str(os.getpid())
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_LAUNCHER, pid, lc_ctype, program, *command]


def _program(name: str, env: Mapping[str, str]) -> str:
    """The path ``name`` runs as on ``env``'s ``PATH``.

    Raises:
      FileNotFoundError: nothing of that name; PermissionError: a file of that name
        that cannot be executed (or a folder), as ``subprocess.Popen`` says.
    """
    path = os.get_exec_path(env)
    program = shutil.which(name, path=os.pathsep.join(path))
    if program is not None:
        return program
    candidates = [name] if os.sep in name else [os.path.join(d, name) for d in path]
    if any(os.path.exists(c) for c in candidates):
        raise PermissionError(errno.EACCES, "Permission denied", name)
    raise FileNotFoundError(errno.ENOENT, "No such file or directory", name)


__all__ = ["tied_to_launcher"]
