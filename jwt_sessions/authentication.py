"""DRF glue: `Authorization: Bearer <access token>` -> verified claims -> a lazy user.

The steps are methods, named as simplejwt names them (`get_header`, `get_raw_token`,
`get_validated_token`, `get_user`), so a project changes one step by overriding one
method: another header, a token from elsewhere, its own rule for which users may act.
"""
from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.functional import SimpleLazyObject, empty
from rest_framework.authentication import BaseAuthentication

from .conf import cached_per_settings
from .credentials import may_act
from .dpop import doors as dpop
from .exceptions import SessionRevoked, TokenInvalid
from .tokens import AccessClaims

KEYWORD = "Bearer"
# A JWT of ours is a few hundred bytes; refuse absurd headers before any parsing.
MAX_TOKEN_LENGTH = 8192


class LazyUser(SimpleLazyObject):
    """`request.user` that answers pk, id and is_authenticated without a query.

    The user row is loaded (by `load`) on first access to any other attribute, so a
    view that only needs the id costs no SQL at all.
    """

    def __init__(self, model: Any, pk: Any, load: Any) -> None:
        super().__init__(lambda: load(model, pk))
        self.__dict__["_user_pk"] = pk
        self.__dict__["_pk_is_id"] = model._meta.pk.attname == "id"

    @property
    def pk(self) -> Any:
        return self.__dict__["_user_pk"]

    @property
    def id(self) -> Any:
        if self.__dict__["_pk_is_id"]:
            return self.__dict__["_user_pk"]
        return self.__getattr__("id")

    is_authenticated = True
    is_anonymous = False

    def __bool__(self) -> bool:  # `if request.user` (DRF's IsAuthenticated) costs nothing
        return True


def bearer_token(header: str, keyword: str = KEYWORD) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None for another scheme.

    A Bearer value that is not exactly one reasonably sized token is a 401, not a guess.
    """
    parts = header.split()
    if not parts or parts[0].lower() != keyword.lower():
        return None
    if len(parts) != 2 or len(parts[1]) > MAX_TOKEN_LENGTH:
        raise TokenInvalid(f"The Authorization header must be '{keyword} <one token>'.")
    return parts[1]


def load_active_user(model: Any, pk: Any) -> Any:
    """The user row, or `session_revoked` if it is gone or the user rule
    (`USER_AUTHENTICATION_RULE`; default: active) refuses it."""
    user = model._default_manager.filter(pk=pk).order_by().first()
    if not may_act(user):
        raise SessionRevoked()
    return user


@cached_per_settings
def _user_model() -> Any:
    """The user model, looked up once per settings (not on every request)."""
    return get_user_model()


def lazy_user(claims: AccessClaims, load: Any = load_active_user) -> LazyUser:
    """The claims' user, loaded only when more than its pk is read; `token_invalid` for a
    `sub` that is no pk of the user model."""
    model = _user_model()
    try:
        pk = model._meta.pk.to_python(claims.user_id)
    except ValidationError as exc:
        raise TokenInvalid() from exc
    return LazyUser(model, pk, load)


def _loaded(user: LazyUser) -> Any:
    if user._wrapped is empty:
        user._setup()
    return user._wrapped


async def aload_user(user: LazyUser) -> Any:
    """The user row behind a LazyUser, from async code (the query runs in a thread)."""
    return await sync_to_async(_loaded)(user)


class JWTSessionAuthentication(BaseAuthentication):
    """Authenticate with a jwt_sessions access token; `request.auth` is its AccessClaims."""

    keyword = KEYWORD
    presented: dpop.Presented | None = None

    def authenticate(self, request: Any) -> tuple[Any, AccessClaims] | None:
        header = self.get_header(request)
        if header is None:
            return None
        raw_token = self.get_raw_token(header)
        if raw_token is None:
            return None
        # DRF makes one authenticator per request: this is that request's presentation.
        self.presented = dpop.presented_by_request(request, header.split()[0], raw_token)
        claims = self.get_validated_token(raw_token)
        return self.get_user(claims), claims

    def get_header(self, request: Any) -> str | None:
        """The header that carries the token (`Authorization`), or None."""
        return request.META.get("HTTP_AUTHORIZATION") or None

    def get_raw_token(self, header: str) -> str | None:
        """The token in `Bearer <token>` or `DPoP <token>`; None for another scheme (left
        to another authentication class), `token_invalid` for a malformed header."""
        return bearer_token(header, self.keyword) or bearer_token(header, dpop.SCHEME)

    def get_validated_token(self, raw_token: str) -> AccessClaims:
        """Signature, claims, the DPoP binding (as the request being authenticated
        presents the token: scheme and proof; outside `authenticate`, a bare Bearer
        token), and the session: one Redis round trip on a hit."""
        return dpop.authenticate(raw_token, self.presented)

    def get_user(self, claims: AccessClaims) -> Any:
        """The lazy user of the claims, loaded by `load_user` when first needed."""
        return lazy_user(claims, self.load_user)

    def load_user(self, model: Any, pk: Any) -> Any:
        """Load the user when a view first needs more than its pk. Which users may act
        is `USER_AUTHENTICATION_RULE`'s to say, for every door; override this only for
        a rule of this class alone."""
        return load_active_user(model, pk)

    def authenticate_header(self, request: Any) -> str:
        return dpop.authenticate_header(request) or f'{self.keyword} realm="api"'
