"""The grid service: the closed loop of grid case handling (网格发现、上报、处置、反馈).

- :mod:`services.grid.domain` — the pure rules: case state, ``decide``/``evolve``, the
  deadline policy, overdue detection and escalation, duplicate detection, grid codes.
- ``services/grid/policy/deadlines.yaml`` — the default deadline policy (时限标准), data the
  operator can change; parsed by the application layer and handed to
  :meth:`services.grid.domain.DeadlinePolicy.from_mapping`.
"""
