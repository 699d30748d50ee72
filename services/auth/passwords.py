"""Password hashing with argon2id (memory-hard), via argon2-cffi."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from services.common.errors import InvalidArgument

MIN_LENGTH = 8
MAX_LENGTH = 1024


class Passwords:
    """Hashes and checks passwords; the cost is configurable so tests can run fast."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Checked against when the username is unknown, so a miss costs as much time as a hit.
        self._decoy = self._hasher.hash("decoy password that matches nothing")

    @staticmethod
    def validate(password: str) -> None:
        """Refuse passwords too short to be worth hashing, or absurdly long."""
        if len(password) < MIN_LENGTH:
            raise InvalidArgument(f"password must be at least {MIN_LENGTH} characters")
        if len(password) > MAX_LENGTH:
            raise InvalidArgument(f"password must be at most {MAX_LENGTH} characters")

    def hash(self, password: str) -> str:
        """An argon2id hash of `password`."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; with no hash, spend the same time and say no."""
        try:
            return self._hasher.verify(password_hash or self._decoy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than today's."""
        return self._hasher.check_needs_rehash(password_hash)
