"""Engines: one small interface (`base.Engine`) and one module per kind of work."""
