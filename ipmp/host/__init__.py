"""Files under the root (``-R DIR``): Solaris boot files, the state store, the NIC name map.

Also the other network managers of the host (NetworkManager, systemd-networkd,
ifupdown, netplan) and systemd's readiness protocol: everything the toolkit
reads or writes on the host that is not the kernel's networking.
"""
