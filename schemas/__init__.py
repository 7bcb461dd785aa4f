"""The public topic and event contract in code (the guide to it: docs/contract.md).

- :mod:`schemas.envelope` — the CloudEvents 1.0 envelope and its codec.
- :mod:`schemas.common`   — base classes of every command and event payload, shared codes.
- :mod:`schemas.codes`    — :class:`~schemas.codes.GridCode` and the 15-digit grid code tree
  (division → street → community → grid).
- :mod:`schemas.topics`   — the one topic registry.
- :mod:`schemas.grid`, :mod:`schemas.orders`, :mod:`schemas.points`, :mod:`schemas.assessment`
  — every command and event of each service.
- :mod:`schemas.registry` — message type string -> payload model, for decoders.
"""
