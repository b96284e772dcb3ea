"""The kernel boundary: read the kernel's state, watch it change, carry plan operations out.

The only package that talks to the kernel's networking, and the only one that
imports pyroute2 (tests/unit/test_import_rules.py).
"""
