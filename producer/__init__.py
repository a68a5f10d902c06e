"""Faker-driven login event producer for the login pipeline.

The package is split by role: ``provider`` (a Faker provider that knows what
logins look like), ``rhythm`` (when logins happen), ``events`` (turning both
into JSON records), ``delivery`` (kafka-python with every send counted),
``progress`` (what the user sees while it runs) and ``cli`` (flags and the run loop).
"""
