"""The Solaris side: ``ifconfig`` words and hostname-file lines to a ``Config``, and back to text.

Pure: the keyword table (``keywords``), the grammar (``parse``, with the
words' syntax in ``syntax`` and the PLY grammar in ``grammar`` over the
generated ``grammar_tables``), the semantics (``evaluate``, which applies
each word through the handler ``handlers`` pairs it with: ``unit_words``,
``link_words``, on a ``folder``; the words' values: ``addresses``), one interface's
boot as Solaris ran it (``bootsteps``), the rescue of a missing NIC's
addresses (``rescue``) and the status output (``render``, with each
logical's flag word and MTU in ``flagword`` and the Solaris 11 view in
``s11_view``).  Nothing here knows Linux: the Linux side (``ipmp.linux``)
reads these values, never the other way round.
"""
