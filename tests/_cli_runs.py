"""Helpers shared by the command-line tests: run ``nnjax`` in-process, read its output."""

from nnjax import cli

TINY = ("--dataset", "xor", "--hidden", "4", "--quiet")
"""A `nnjax train` that takes a second: XOR, 4 hidden units, no progress output."""


def run_cli(capsys, *argv):
    """``(exit status, stdout, stderr)`` of ``nnjax ARGV`` run in this process."""
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(err):
    """Whether ``err`` is one line and no traceback."""
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err
