"""The points service application: the kit runtime wired to the pure domain and the projection."""
