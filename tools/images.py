"""Build the container images of deploy/images/roles.toml, one per role (what `make images` runs).

python tools/images.py --engine docker --registry ghcr.io/aiorch --tag 0.1.0 [--only worker-speech] [--print]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROLES = ROOT / "deploy" / "images" / "roles.toml"


@dataclass(frozen=True)
class Role:
    """One image: its name, the Dockerfile that builds it, and what it installs."""

    name: str
    image: str
    dockerfile: str
    extras: tuple[str, ...]
    debian: tuple[str, ...]
    job_types: tuple[str, ...]


def roles(path: Path = ROLES) -> list[Role]:
    """The roles of roles.toml, in file order."""
    table = tomllib.loads(path.read_text())
    return [
        Role(
            name=name,
            image=entry["image"],
            dockerfile=entry["dockerfile"],
            extras=tuple(entry["extras"]),
            debian=tuple(entry["debian"]),
            job_types=tuple(entry["job_types"]),
        )
        for name, entry in table.items()
    ]


def build_command(role: Role, *, engine: str, registry: str, tag: str) -> list[str]:
    """The `docker build` (or podman) command line of one role, run from the repository root."""
    command = [engine, "build", "-f", f"deploy/images/{role.dockerfile}", "-t", f"{registry}/{role.image}:{tag}"]
    if role.dockerfile == "aiorch.Dockerfile":
        command += ["--build-arg", f"EXTRAS={','.join(role.extras)}"]
        command += ["--build-arg", f"DEBIAN_PACKAGES={' '.join(role.debian)}"]
    return [*command, "."]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="docker", help="docker or podman")
    parser.add_argument("--registry", default="ghcr.io/aiorch")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--only", action="append", default=[], help="a role of roles.toml (repeatable)")
    parser.add_argument("--print", action="store_true", help="print the commands instead of running them")
    args = parser.parse_args()
    chosen = [role for role in roles() if not args.only or role.name in args.only]
    unknown = set(args.only) - {role.name for role in chosen}
    if unknown:
        parser.error(f"unknown roles: {', '.join(sorted(unknown))} (see {ROLES.relative_to(ROOT)})")
    for role in chosen:
        command = build_command(role, engine=args.engine, registry=args.registry, tag=args.tag)
        print(shlex.join(command), flush=True)
        if not args.print:
            result = subprocess.run(command, cwd=ROOT, env={**os.environ, "DOCKER_BUILDKIT": "1"}, check=False)
            if result.returncode:
                return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
