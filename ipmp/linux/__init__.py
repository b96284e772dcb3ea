"""The Linux side: what the kernel must hold for a ``Config``, and the changes that get it there.

Pure: the Solaris view of the kernel (``view``), what the kernel must hold
for a configuration (``desired``), the
kernel changes as values (``ops``) and the difference of two kernel states
as a plan (``plan``).  Carrying a plan out is ``ipmp.kernel``'s job.
"""
