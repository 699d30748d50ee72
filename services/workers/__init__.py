"""Workers: take dispatched jobs from JetStream, run an engine, report events, store results."""
