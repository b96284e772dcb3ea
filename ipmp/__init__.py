"""ipmp: Solaris IP Multipathing (IPMP) for Linux.

Glossary (the Solaris vocabulary this package uses everywhere):

group
    A set of physical interfaces (NICs) on one link that back each other up.
physical interface
    A NIC (``qfe0``); Solaris calls its state a *phyint*.
logical interface
    One address slot of a NIC: ``qfe0`` is unit 0, ``qfe0:1`` unit 1, ...
    On Linux an IPv4 logical interface is an address label.
data address
    An address applications use; it moves to another NIC of the group when
    its NIC fails (failover) and back when it is repaired (failback).
test address
    An address marked ``-failover`` (NOFAILOVER); it never moves, and
    in.mpathd sends its probes from it.
target
    A host or router that in.mpathd probes (ICMP echo) from a test address.
failure detection time (FDT)
    How long a NIC may fail to answer probes before it is declared failed.
standby
    A NIC that carries no data address until another NIC fails (INACTIVE).
offline
    A NIC taken out of service by ``if_mpadm -d``.
"""

__version__ = "0.1.0"

# The Debian package carries pyroute2 0.9 in /usr/lib/ipmp/vendor (Debian's is
# 0.7) and adds ipmp/_vendor.py, which puts it first on sys.path.  It is done
# here because every program imports ipmp first, also the ones started as
# ``python3 -I -m`` (ipmp.program), which no PYTHONPATH reaches.  Elsewhere
# (a wheel, a checkout) the module does not exist: pyroute2 is the environment's.
# ``__import__`` rather than contextlib/importlib: this runs at the start of
# every command, and ``ifconfig -a`` needs neither (see ipmp.cli.ifconfig).
try:
    __import__("ipmp._vendor")
except ModuleNotFoundError as err:
    if err.name != "ipmp._vendor":
        raise
