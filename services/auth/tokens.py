"""Logins and tokens: obtain, rotate, verify and revoke JWT pairs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.auth.keys import SigningKey, public_jwk
from services.auth.models import OUTBOX, RefreshToken, User
from services.auth.passwords import Passwords
from services.auth.throttle import LoginThrottle
from services.common.db import Database, utcnow
from services.common.errors import Unauthenticated
from services.common.identity import ACCESS, ALGORITHM, REFRESH, TokenVerifier
from services.common.logging import get_logger
from services.common.outbox import enqueue
from services.common.revocations import revocation_message

log = get_logger(__name__)

# One message for every failed login, so it never tells whether a username exists.
BAD_CREDENTIALS = "no active account found with the given credentials"


@dataclass(frozen=True)
class TokenPair:
    """An access token and the refresh token that can replace it."""

    access: str
    refresh: str


@dataclass(frozen=True)
class TokenLifetimes:
    """How long each kind of token stays valid."""

    access: timedelta
    refresh: timedelta


class TokenIssuer:
    """Issues, rotates, verifies and revokes tokens."""

    def __init__(
        self,
        db: Database,
        key: SigningKey,
        previous_keys: list[Ed25519PublicKey],
        verifier: TokenVerifier,
        passwords: Passwords,
        throttle: LoginThrottle,
        lifetimes: TokenLifetimes,
        issuer: str,
        audience: str,
        on_revoked: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        # Called after a commit that revoked sessions: wakes the outbox relay that announces them.
        self._on_revoked = on_revoked
        self._key = key
        self._previous = previous_keys
        self._verifier = verifier
        self._passwords = passwords
        self._throttle = throttle
        self._lifetimes = lifetimes
        self._issuer = issuer
        self._audience = audience

    def jwks(self) -> list[dict[str, str]]:
        """The public keys that verify our tokens: the signing key's and, during a rotation, earlier ones."""
        return [self._key.jwk(), *(public_jwk(k) for k in self._previous)]

    def obtain(self, username: str, password: str, address: str) -> TokenPair:
        """Log in: check the throttle, then the password, then issue a new token family."""
        now = utcnow()
        with self._db.transaction() as session:
            self._throttle.check(session, username, address, now)
            user = session.scalar(select(User).where(User.username == username))
            password_hash = user.password_hash if user is not None and user.active else None
        # Hash outside the transaction: argon2 is deliberately slow and needs no connection.
        ok = self._passwords.verify(password_hash, password)
        with self._db.transaction() as session:
            if not ok or user is None:
                self._throttle.record_failure(session, username, address, now)
            else:
                self._throttle.clear(session, username, address)
                if self._passwords.needs_rehash(user.password_hash):
                    session.get_one(User, user.id).password_hash = self._passwords.hash(password)
                pair = self._issue(session, user, family_id=uuid.uuid4(), now=now)
        if not ok or user is None:
            log.info("login failed", username=username, address=address)
            raise Unauthenticated(BAD_CREDENTIALS)
        log.info("login", user_id=str(user.id))
        return pair

    def refresh(self, refresh_token: str) -> TokenPair:
        """Spend a refresh token for a new pair; a spent one revokes its whole family."""
        claims = self._verifier.claims(refresh_token, REFRESH)
        jti = _uuid_claim(claims, "jti")
        now = utcnow()
        reused = False
        with self._db.transaction() as session:
            # The row lock makes two concurrent refreshes of one token see each other.
            row = session.scalar(select(RefreshToken).where(RefreshToken.jti == jti).with_for_update())
            if row is None or row.revoked_at is not None:
                raise Unauthenticated("refresh token is not valid")
            if row.spent_at is not None:
                self._revoke_family(session, row.family_id, now)
                reused = True
            else:
                user = session.get(User, row.user_id)
                if user is None or not user.active:
                    self._revoke_family(session, row.family_id, now)
                    raise Unauthenticated("refresh token is not valid")
                row.spent_at = now
                pair = self._issue(session, user, family_id=row.family_id, now=now)
        if reused:
            self._on_revoked()
            log.warning("refresh token reused; family revoked", family_id=str(row.family_id))
            raise Unauthenticated("refresh token was already used; every session of this login is revoked")
        return pair

    def verify(self, token: str) -> None:
        """Accept a valid access or refresh token of an active user that is not revoked."""
        try:
            claims = self._verifier.claims(token, ACCESS)
        except Unauthenticated:
            claims = self._verifier.claims(token, REFRESH)
        user_id = _uuid_claim(claims, "sub")
        with self._db.transaction() as session:
            user = session.get(User, user_id)
            if user is None or not user.active:
                raise Unauthenticated("token is not valid")
            if claims["typ"] == ACCESS and _family_revoked(session, claims.get("fam")):
                raise Unauthenticated("token is not valid")
            if claims["typ"] == REFRESH:
                row = session.get(RefreshToken, _uuid_claim(claims, "jti"))
                if row is None or row.revoked_at is not None or row.spent_at is not None:
                    raise Unauthenticated("token is not valid")

    def revoke(self, refresh_token: str) -> None:
        """Log out: revoke the refresh token's family. Revoking twice is fine."""
        claims = self._verifier.claims(refresh_token, REFRESH)
        with self._db.transaction() as session:
            row = session.get(RefreshToken, _uuid_claim(claims, "jti"))
            if row is None:
                raise Unauthenticated("refresh token is not valid")
            self._revoke_family(session, row.family_id, utcnow())
        self._on_revoked()

    @staticmethod
    def revoke_user(session: Session, user_id: uuid.UUID, now: datetime) -> None:
        """End every session of a user (deactivation, role or password change), access tokens included."""
        # A family whose refresh tokens have all expired has no live access token either (refresh
        # tokens live longer), so only the others need announcing.
        families = session.scalars(
            select(RefreshToken.family_id)
            .where(
                RefreshToken.user_id == user_id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .distinct()
        )
        for family_id in list(families):
            TokenIssuer._revoke_family(session, family_id, now)

    @staticmethod
    def _revoke_family(session: Session, family_id: uuid.UUID, now: datetime) -> None:
        """Revoke a family's refresh tokens and announce it, so services refuse its access tokens too."""
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        enqueue(session, OUTBOX, revocation_message(str(family_id), now.timestamp()))

    def _issue(self, session: Session, user: User, family_id: uuid.UUID, now: datetime) -> TokenPair:
        refresh_jti = uuid.uuid4()
        session.add(
            RefreshToken(
                jti=refresh_jti,
                family_id=family_id,
                user_id=user.id,
                issued_at=now,
                expires_at=now + self._lifetimes.refresh,
            )
        )
        common = {
            "sub": str(user.id),
            "role": user.role,
            "iss": self._issuer,
            "aud": self._audience,
            "fam": str(family_id),
        }
        access = self._sign({**common, "typ": ACCESS, "jti": str(uuid.uuid4())}, now, self._lifetimes.access)
        refresh = self._sign(
            {**common, "typ": REFRESH, "jti": str(refresh_jti)},
            now,
            self._lifetimes.refresh,
        )
        return TokenPair(access=access, refresh=refresh)

    def _sign(self, claims: dict[str, Any], now: datetime, lifetime: timedelta) -> str:
        payload = {**claims, "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp())}
        return jwt.encode(payload, self._key.private, algorithm=ALGORITHM, headers={"kid": self._key.kid})


def _family_revoked(session: Session, family: object) -> bool:
    try:
        family_id = uuid.UUID(str(family))
    except ValueError:
        return True
    revoked = select(RefreshToken.jti).where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_not(None))
    return session.scalar(revoked.limit(1)) is not None


def _uuid_claim(claims: dict[str, Any], name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(claims[name]))
    except (KeyError, ValueError) as exc:
        raise Unauthenticated("token is not valid") from exc
