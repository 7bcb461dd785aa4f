"""District simulator and example client (issue 7).

- :mod:`.district` — a sample district from a seed, on the grid service's register.
- :mod:`.client` — :class:`~.client.CommandClient`: publish a command to an intake topic and
  follow its outcome by ``causationid`` (the example other city systems can copy).
- :mod:`.flows` — the stories (cases, disputes, duplicates, 四单 orders, deeds, redemptions,
  adjustments, patrols, reviews, bad input).
- :mod:`.identities` — who sends what: every simulated person with a token of their own, signed
  with the dev identity provider's key, as the role the services' policy allows.
- :mod:`.runner` — the loop: RATE commands/s and month-ends on the services' (simulated) calendar.

The simulator talks Kafka, plus one HTTP call (a resident's redemption consent code from the
points API); it never touches a database.
"""
