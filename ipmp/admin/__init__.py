"""What the administration commands do, without the printing or the exit codes.

``ifconfig`` and ``ipmp-boot`` (``session``, the read path ``status``, the
one way the host is changed: ``apply``) and ``ipmpstat``'s tables from
in.mpathd's snapshot (``ipmpstat``).  The shells in ``ipmp.cli`` parse
arguments, call these and print.
"""
