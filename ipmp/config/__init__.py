"""The Solaris side: ``ifconfig`` words and hostname-file lines to a ``Config``, and back to text.

Pure: the keyword table (``keywords``), the grammar (``parse`` over the
generated ``grammar_tables``), the semantics (``evaluate``), one interface's
boot as Solaris ran it (``bootsteps``), the rescue of a missing NIC's
addresses (``rescue``) and the status output (``render``).  Nothing here
knows Linux: the Linux side (``ipmp.linux``) reads these values, never the
other way round.
"""
