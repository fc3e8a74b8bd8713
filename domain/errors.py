"""Expected failures of domain services.

Every service raises a subclass of :class:`DomainError`; the GraphQL layer maps it to a typed payload
error with the same ``code``, ``field`` and ``message``. Messages never contain personal data.
"""

from __future__ import annotations


class DomainError(Exception):
    code: str = "INVALID"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class ValidationFailed(DomainError):
    """Input that breaks a rule of the domain (a malformed NIK, an empty reason...)."""

    code = "INVALID"

    def __init__(self, errors: list[DomainError]) -> None:
        super().__init__(errors[0].message, field=errors[0].field, code=errors[0].code)
        self.errors = errors


class NotFound(DomainError):
    """The object does not exist, or is outside what the actor may see: the two are not told apart."""

    code = "NOT_FOUND"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class ServiceUnavailable(Exception):
    """The database could not be reached: not the caller's fault, and worth retrying (with the same
    idempotency key for intake). Deliberately not a :class:`DomainError`: it is answered as a top-level
    ``SERVICE_UNAVAILABLE`` error, never as a payload error of one mutation."""


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class StaleVersion(DomainError):
    code = "STALE_VERSION"

    def __init__(self, message: str = "the object was changed by someone else; reload and try again",
                 *, field: str | None = "expectedVersion", current_version: int | None = None) -> None:
        super().__init__(message, field=field)
        self.current_version = current_version


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"


class Duplicate(DomainError):
    """An identity (NIK, No. KK) that is already registered."""

    code = "DUPLICATE"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 household_id: int | None = None) -> None:
        super().__init__(message, field=field, code=code)
        self.household_id = household_id


class IdempotencyConflict(DomainError):
    """The idempotency key was used before for a different operation."""

    code = "IDEMPOTENCY_KEY_REUSED"
