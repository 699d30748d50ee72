"""What every aiorch service needs, written once: config, database, auth, metrics, logs, server start-up."""
