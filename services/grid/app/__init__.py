"""The grid service's application layer: settings, handler, routes, timers, metrics."""
