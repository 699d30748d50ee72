"""`python -m services.projects` runs the projects service (the same as `aiorch serve projects`)."""

from services.cli.main import main

main(["serve", "projects"])
