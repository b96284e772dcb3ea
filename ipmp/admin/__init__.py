"""What the administration commands do, without the printing or the exit codes.

``ifconfig`` (a change: ``command`` over ``session``; the read path:
``status``), ``ipmp-boot`` (``boot`` over ``bootfiles``) and ``ipmpstat``'s
tables from in.mpathd's snapshot (``ipmpstat``, ``ipmpstat_rows``,
``ofmt``).  They change the host only through ``ipmp.apply``, which the
daemon shares.  The shells in ``ipmp.cli`` parse arguments, call these and
print.
"""
