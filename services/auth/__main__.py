"""`python -m services.auth` runs the auth service (the same as `aiorch serve auth`)."""

from services.cli.main import main

main(["serve", "auth"])
