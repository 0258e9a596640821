"""DRF glue: `Authorization: Bearer <access token>` -> verified claims -> a lazy user."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.functional import SimpleLazyObject
from rest_framework.authentication import BaseAuthentication

from .conf import jwt_settings
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


def _user_model() -> tuple[Any, Any, bool]:
    """(user model, its pk field, whether pk is `id`): looked up once per settings."""
    model = get_user_model()
    return model, model._meta.pk, model._meta.pk.attname == "id"


class LazyUser(SimpleLazyObject):
    """`request.user` that answers pk, id and is_authenticated without a query.

    The user row is loaded on first access to any other attribute, so a view that only
    needs the id costs no SQL at all.
    """

    def __init__(self, model: Any, pk: Any, pk_is_id: bool | None = None) -> None:
        super().__init__(lambda: _load_user(model, pk))
        self.__dict__["_user_pk"] = pk
        self.__dict__["_pk_is_id"] = (model._meta.pk.attname == "id" if pk_is_id is None
                                      else pk_is_id)

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


class JWTSessionAuthentication(BaseAuthentication):
    """Authenticate with a jwt_sessions access token; `request.auth` is its AccessClaims."""

    keyword = KEYWORD

    def authenticate(self, request: Any) -> tuple[Any, AccessClaims] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() != self.keyword.lower():
            return None  # another scheme: leave it to another authentication class
        if len(parts) != 2 or len(parts[1]) > MAX_TOKEN_LENGTH:
            raise TokenInvalid("The Authorization header must be 'Bearer <one token>'.")
        claims = authenticate_access(parts[1])
        model, pk_field, pk_is_id = jwt_settings.derived("user_model", _user_model)
        try:
            pk = pk_field.to_python(claims.user_id)
        except ValidationError as exc:
            raise TokenInvalid() from exc
        return LazyUser(model, pk, pk_is_id), claims

    def authenticate_header(self, request: Any) -> str:
        return f'{self.keyword} realm="api"'
