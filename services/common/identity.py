"""Who is calling: roles, the caller, and access-token verification with the public key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from services.common.errors import Unauthenticated

ALGORITHM = "EdDSA"
ACCESS = "access"
REFRESH = "refresh"


class Role(StrEnum):
    """A user's global role."""

    ADMIN = "admin"  # everything, including users and global settings
    EDITOR = "editor"  # creates projects and jobs; changes what they own or may write
    VIEWER = "viewer"  # reads what they own or are a member of; never writes
    # A machine account for workers outside the cluster: reads jobs, reports progress and results;
    # owns nothing and manages no users or projects.
    SERVICE = "service"

    @classmethod
    def parse(cls, value: str) -> Role:
        """The role named `value`, or a clear error."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(r.value for r in cls)
            raise ValueError(f"role must be one of {names}, not {value!r}") from None


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of an RPC, read from a verified access token."""

    user_id: uuid.UUID
    role: Role
    token_id: str
    # The login session (token family) the token belongs to; logout and deactivation revoke it.
    family_id: str = ""
    # The bearer token itself, forwarded when this service calls another on the caller's behalf.
    token: str = field(default="", repr=False)
    # When the token expires (seconds since the epoch; 0: unknown or never). Open streams end then.
    expires_at: float = 0.0
    # An API key limited to one project touches no other (services/common/api_keys.py).
    project_scope: uuid.UUID | None = None
    # The API key the call came with; empty for an access token.
    api_key_id: str = ""

    @property
    def is_admin(self) -> bool:
        """True for the admin role."""
        return self.role is Role.ADMIN

    def in_scope(self, project_id: uuid.UUID | str) -> bool:
        """False for every project but its own when the caller's API key is limited to one."""
        return self.project_scope is None or str(self.project_scope) == str(project_id)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read the Ed25519 public key that verifies tokens."""
    key = load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def previous_key_files(previous: str) -> list[Path]:
    """The files of AIORCH_JWT_PREVIOUS_PUBLIC_KEY_FILES: comma-separated PEM files or folders.

    A folder stands for every ``*.pem`` file in it, none when empty: Kubernetes mounts an optional Secret of
    previous keys as a folder that is empty until the Secret exists, so no rotation needs a manifest change.
    """
    files: list[Path] = []
    for entry in (Path(p.strip()) for p in previous.split(",") if p.strip()):
        files += sorted(entry.glob("*.pem")) if entry.is_dir() else [entry]
    return files


def load_public_keys(path: Path, previous: str = "") -> list[Ed25519PublicKey]:
    """The current public key and any previous ones (files or folders) still accepted during a rotation."""
    return [load_public_key(path), *(load_public_key(p) for p in previous_key_files(previous))]


class TokenVerifier:
    """Checks signature, algorithm, expiry, issuer, audience and type of a JWT.

    Several public keys may verify: while a signing key is rotated, tokens signed with the
    previous key stay valid until they expire, so nobody is logged out.
    """

    def __init__(self, public_keys: Ed25519PublicKey | list[Ed25519PublicKey], issuer: str, audience: str) -> None:
        self._keys = public_keys if isinstance(public_keys, list) else [public_keys]
        self._issuer = issuer
        self._audience = audience

    def claims(self, token: str, token_type: str) -> dict[str, Any]:
        """The verified claims of `token`, or Unauthenticated with the reason."""
        claims: dict[str, Any] | None = None
        for key in self._keys:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    # Pinning the algorithm refuses "none" and HS256-with-the-public-key forgeries.
                    algorithms=[ALGORITHM],
                    issuer=self._issuer,
                    audience=self._audience,
                    options={"require": ["exp", "iat", "sub", "jti", "iss", "aud", "typ"]},
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError as exc:
                raise Unauthenticated("token has expired") from exc
            except jwt.InvalidTokenError as exc:
                raise Unauthenticated("token is not valid") from exc
        if claims is None:
            raise Unauthenticated("token is not valid")
        if claims.get("typ") != token_type:
            raise Unauthenticated(f"not an {token_type} token" if token_type == ACCESS else "wrong token type")
        return claims

    def caller(self, token: str) -> Caller:
        """The Caller an access token stands for."""
        claims = self.claims(token, ACCESS)
        family = claims.get("fam")
        # A token without a family could not be revoked, so it is refused.
        if not isinstance(family, str) or not family:
            raise Unauthenticated("token is not valid")
        try:
            return Caller(
                user_id=uuid.UUID(str(claims["sub"])),
                role=Role(str(claims.get("role"))),
                token_id=str(claims["jti"]),
                family_id=family,
                token=token,
                expires_at=float(claims["exp"]),
            )
        except (TypeError, ValueError) as exc:
            raise Unauthenticated("token is not valid") from exc
