"""The party service's application layer (handlers, timers, queries, metrics) on the kit runtime."""
