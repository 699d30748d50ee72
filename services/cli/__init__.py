"""The `aiorch` command: run services, migrate, manage users, start the local stack."""
