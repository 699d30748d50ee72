"""The user-facing `aiorch` commands: log in, manage projects, submit, watch and download jobs over gRPC."""
