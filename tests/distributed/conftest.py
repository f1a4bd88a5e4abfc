"""Starts the 2-process test group (``_group.py``) when the session begins, if it is needed.

The group's two processes then run while this process runs the other slow tests (the
compiles of one process use one core), and the modules that read it
(``test_two_process_*.py``, ``tests/io/test_io_multiprocess.py``: those with
``USES_TWO_PROCESS_GROUP``) find it done or wait for it (a file lock).
"""

import pytest

from ._group import launch_once


@pytest.fixture(scope="session", autouse=True)
def _two_process_group_in_background(request, tmp_path_factory):
    items = request.session.items
    if any(getattr(getattr(i, "module", None), "USES_TWO_PROCESS_GROUP", False) for i in items):
        launch_once(tmp_path_factory, background=True)
        # at the end, wait for the group (its lock) rather than leave its processes behind
        request.addfinalizer(lambda: launch_once(tmp_path_factory))
