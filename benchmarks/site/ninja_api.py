"""The same async whoami operation under django-ninja, twice: guarded by JWTSessionAuth,
and by ninja's own HttpBearer doing a stateless PyJWT decode (the floor at that door:
no revocation check at all)."""
from __future__ import annotations

import jwt
from django.conf import settings
from ninja import NinjaAPI
from ninja.security import HttpBearer

from jwt_sessions.ninja import JWTSessionAuth, install


class StatelessBearer(HttpBearer):
    async def authenticate(self, request, token):
        try:
            return jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            return None


api = NinjaAPI(urls_namespace="bench-ninja")
install(api)


@api.get("/jwt_sessions/whoami", auth=JWTSessionAuth())
async def jwt_sessions_whoami(request):
    return {"id": request.user.pk}


@api.get("/stateless/whoami", auth=StatelessBearer())
async def stateless_whoami(request):
    return {"id": request.auth["sub"]}
