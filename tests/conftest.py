"""The root of the test tree.

Being a conftest of the ``tests`` package, this file makes pytest put the
checkout's top on ``sys.path`` for every run, also one of tests/netns alone
(whose modules import each other as top-level modules): so every test
directory imports the shared helpers as ``tests.<module>`` (``tests.public_tmp``).
"""
