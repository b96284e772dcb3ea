"""Debian guests under QEMU for the checks that need a real system (systemd as PID 1).

``image`` builds the disk (a cached Debian root file system from Debian's
packages, then the project installed into it as README says), ``guest``
boots it with QEMU and talks to it, ``guest_files/`` holds what is copied
into the guest.  See README.md beside this file.
"""
