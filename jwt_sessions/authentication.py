"""DRF glue: `Authorization: Bearer <access token>` -> verified claims -> a lazy user."""
from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.functional import SimpleLazyObject, empty
from rest_framework.authentication import BaseAuthentication

from .exceptions import SessionRevoked, TokenInvalid
from .services import authenticate_access
from .tokens import AccessClaims

KEYWORD = "Bearer"
# A JWT of ours is a few hundred bytes; refuse absurd headers before any parsing.
MAX_TOKEN_LENGTH = 8192


def _load_user(model: Any, pk: Any) -> Any:
    user = model._default_manager.filter(pk=pk).order_by().first()
    if user is None or not getattr(user, "is_active", True):
        raise SessionRevoked()
    return user


class LazyUser(SimpleLazyObject):
    """`request.user` that answers pk, id and is_authenticated without a query.

    The user row is loaded on first access to any other attribute, so a view that only
    needs the id costs no SQL at all.
    """

    def __init__(self, model: Any, pk: Any) -> None:
        super().__init__(lambda: _load_user(model, pk))
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


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` value; None for another scheme.

    A Bearer value that is not exactly one reasonably sized token is a 401, not a guess.
    """
    parts = header.split()
    if not parts or parts[0].lower() != KEYWORD.lower():
        return None
    if len(parts) != 2 or len(parts[1]) > MAX_TOKEN_LENGTH:
        raise TokenInvalid("The Authorization header must be 'Bearer <one token>'.")
    return parts[1]


def lazy_user(claims: AccessClaims) -> LazyUser:
    """The token's user, loaded only when more than its pk is read."""
    model = get_user_model()
    try:
        pk = model._meta.pk.to_python(claims.user_id)
    except ValidationError as exc:
        raise TokenInvalid() from exc
    return LazyUser(model, pk)


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

    def authenticate(self, request: Any) -> tuple[Any, AccessClaims] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        token = bearer_token(header) if header else None
        if token is None:
            return None  # no credentials, or another scheme: another class may take it
        claims = authenticate_access(token)
        return lazy_user(claims), claims

    def authenticate_header(self, request: Any) -> str:
        return f'{self.keyword} realm="api"'
