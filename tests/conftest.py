"""The root of the test tree.

Being a conftest of the ``tests`` package, this file makes pytest put the
checkout's top on ``sys.path`` for every run, also one of tests/netns alone
(whose modules import each other as top-level modules): so every test
directory imports the shared helpers as ``tests.<module>`` (``tests.public_tmp``).
"""

from __future__ import annotations

import signal


def pytest_configure(config: object) -> None:
    """Start the commands the tests run with SIGINT as a terminal would give it.

    A suite started in the background of a non-interactive shell (a script's
    ``make test &``, a CI step) has SIGINT ignored (POSIX: asynchronous
    commands without job control), every command it starts inherits that,
    and Python then installs no KeyboardInterrupt handler: the tests that
    interrupt ``ipmpstat -p`` or ``ipmp-lab up`` with SIGINT would wait in
    vain.  The commands rightly keep an ignored SIGINT ignored (a shell's
    background job must outlive a Ctrl-C); the suite's own process takes
    Python's handler back, which its children get as the default action.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
