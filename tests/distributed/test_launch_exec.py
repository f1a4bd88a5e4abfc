"""What a launched program starts with: the signals, environment and errors of a plain exec.

On Linux each process starts through a small Python that ties it to the launcher
(``nnjax.distributed._trampoline``); the program must not inherit what Python's own
start-up did (SIGPIPE ignored, ``LC_CTYPE`` coerced), and a program that cannot run is
named as ``subprocess.Popen`` names it.
"""

import os
import stat
import sys

import pytest

from nnjax import distributed

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _launched_output(tmp_path, script, **kwargs):
    out = tmp_path / "out.txt"
    status = distributed.launch(["sh", "-c", f"{script} > {out} 2>&1"], 1, **kwargs)
    return status, out.read_text()


def test_sigpipe_and_sigxfsz_are_not_ignored(tmp_path):
    status, text = _launched_output(tmp_path, "grep SigIgn /proc/$$/status")
    assert status == 0, text
    ignored = int(text.split()[-1], 16)
    assert not ignored & (1 << 12) and not ignored & (1 << 24)  # SIGPIPE 13, SIGXFSZ 25
    status, text = _launched_output(tmp_path, "yes | head -n 1")
    assert (status, text) == (0, "y\n")  # no "yes: standard output: Broken pipe"


@pytest.mark.parametrize("lc_ctype", [None, "C"])
def test_the_environment_is_the_one_asked_for(tmp_path, lc_ctype):
    asked = {"PATH": os.environ["PATH"]} | ({} if lc_ctype is None else {"LC_CTYPE": lc_ctype})
    status, text = _launched_output(tmp_path, "env", env=asked)
    assert status == 0, text
    lines = [line for line in text.splitlines() if line.startswith("LC_CTYPE=")]
    assert lines == ([] if lc_ctype is None else [f"LC_CTYPE={lc_ctype}"])


def test_a_file_that_is_not_executable_is_a_permission_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "script.sh").write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(PermissionError, match=r"script\.sh"):
        distributed.launch(["./script.sh"], 1)
    with pytest.raises(FileNotFoundError, match=r"missing\.sh"):
        distributed.launch(["./missing.sh"], 1)


def test_a_program_that_cannot_run_is_one_line_naming_it(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "no_shebang.bin"
    script.write_bytes(b"\x00\x01not a program")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert distributed.launch(["./no_shebang.bin"], 1) == 126
    err = capfd.readouterr().err
    assert "nnjax launch: cannot run ./no_shebang.bin: Exec format error" in err
    assert "Traceback" not in err
