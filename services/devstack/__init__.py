"""The local stack: Postgres, NATS and Envoy from their wheels plus every service, on one machine.

Used by `make run` (in the foreground) and by the tests (one stack per session).
"""
