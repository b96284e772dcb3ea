"""The kernel boundary: read the kernel's state, watch it change, carry plan operations out.

The only package that talks to the kernel's networking, and the only one that
imports pyroute2 (tests/unit/test_import_rules.py).  One job a module:

* ``decode``: rtnetlink messages to ``ipmp.model`` values, the one attribute
  decoder (pure);
* ``read``: the dump, ``read_state`` (the read path of ``ifconfig``: no
  pyroute2, no event loop);
* ``request``: address, route and rule ops as rtnetlink requests of our own;
* ``sysctl``: ``/proc/sys`` reads and writes;
* ``execute``: ``Kernel``, carrying a plan out;
* ``watch``: in.mpathd's multicast ``Watcher`` and ``CarrierReader``.
"""
