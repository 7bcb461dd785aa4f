"""Assessment service (考核): indicators, weighted scorecards, rankings, two-way reviews, alerts.

``domain/`` holds every rule, pure; ``schemes/default.yaml`` is the default scheme.
"""
