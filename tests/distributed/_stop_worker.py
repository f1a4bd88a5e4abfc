"""A launched process for ``test_launch_stop.py``: joins the group, then waits or fails.

Usage: python _stop_worker.py FOLDER MODE

* ``wait``: every process joins, touches ``FOLDER/joined<i>`` and sleeps for a minute;
  a Python-level stop (``KeyboardInterrupt``) touches ``FOLDER/stopped<i>`` on the way.
* ``fail1``: process 1 runs ``nnjax evaluate`` of a folder that holds no run (it joins
  the group, then fails with a one-line error); the others join and wait as above.
"""

import os
import sys
import time
from pathlib import Path


def main(folder, mode):
    from nnjax import cli, distributed

    if mode == "fail1" and os.environ["NNJAX_PROCESS_ID"] == "1":
        return cli.main(["evaluate", str(folder / "no-run")])
    distributed.initialize_if_launched(heartbeat_timeout_s=10)
    index = distributed.process_index()
    (folder / f"joined{index}").touch()
    try:
        time.sleep(60)
    finally:
        (folder / f"stopped{index}").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
