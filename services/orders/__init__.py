"""The orders service: 四单式 service orders — 居民点单、社区派单、干部接单、组织考单.

``domain/`` holds the pure rules (orders, members, posts, dispatch choice, expiry, the
mapping from grid cases); the application layer loads state, calls them, stores the new
state and publishes the events.
"""
