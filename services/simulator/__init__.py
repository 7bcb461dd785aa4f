"""District simulator and example client (issue 7).

- :mod:`.district` — a sample district from a seed, on the grid service's register.
- :mod:`.client` — :class:`~.client.CommandClient`: publish a command to an intake topic and
  follow its outcome by ``causationid`` (the example other city systems can copy).
- :mod:`.flows` — the stories (cases, disputes, duplicates, 四单 orders, deeds, redemptions,
  patrols, reviews, bad input).
- :mod:`.runner` — the loop: RATE commands/s and month-ends on the services' (simulated) calendar.

The simulator talks only Kafka (and nothing else): it never touches a database.
"""
