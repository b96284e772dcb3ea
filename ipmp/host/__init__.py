"""Files under the root (``-R DIR``): Solaris boot files, the state store, the NIC name map.

The hostname files (``hostfiles``) and the hosts, netmasks and defaultrouter
files (``lookups``); the other network managers of the host (NetworkManager,
systemd-networkd, ifupdown, netplan: ``coexist``, and the drop-ins that make
them let go: ``dropins``); the unit drop-ins of ``ipmp-boot-generator``
(``bootorder``) and systemd's readiness protocol: everything the toolkit
reads or writes on the host that is not the kernel's networking.
"""
