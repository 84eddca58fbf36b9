"""repzone client: reputation lookups over DNS (docs/client-design.md).

The list formats it reads (owner names, hashing, TXT, return codes, scoring) are
:mod:`listformat`'s; this package is the message-to-token layer and the lookup library:

- ``client.facts`` (with ``client.received``, ``client.authresults``, ``client.mailheaders``,
  ``client.urls``, ``client.tld``): facts from a message.
- ``client.verify``: DKIM and SPF checked (the one step that needs DNS; the faces take it).
- ``client.selectors`` (with ``client.selectorlang``): facts -> tokens, as Rspamd derives them.
- ``client.selectorconfig``: the selectors' configuration (``SelectorConfig``, ``ZoneRef``).
- ``client.plan``: the I/O-free lookup plan: tokens -> names, answers -> scores.
- ``client.client``: ``Client`` and ``AsyncClient``; ``client.cache``.
- ``client.dnswire`` and ``client.transport``: the query and reply bytes, and how they travel
  (UDP multiplexers, TCP after TC, ``MemoryTransport`` for tests).
- ``client.errors``: ``ClientError``, the root of the client's exceptions.
- ``client.repq``: the ``repq`` command.
"""
