"""A django-ninja API guarded by JWTSessionAuth, with the jwt_sessions endpoints beside it."""
from django.urls import include, path
from ninja import NinjaAPI, Router

from jwt_sessions.ninja import JWTSessionAuth, install

api = NinjaAPI(urls_namespace="tests-ninja")
install(api)
router = Router(auth=JWTSessionAuth())


@router.get("/sync/whoami")
def sync_whoami(request):
    return {"id": request.user.pk, "sid": str(request.auth.session_id)}


@router.get("/async/whoami")
async def async_whoami(request):
    return {"id": request.user.pk, "sid": str(request.auth.session_id)}


@router.get("/async/me")
async def async_me(request):
    user = await request.auser()
    return {"id": user.pk, "username": user.get_username()}


@router.get("/sync/me")
def sync_me(request):
    return {"id": request.user.pk, "username": request.user.get_username()}


api.add_router("/", router)


@api.get("/open")
def open_operation(request):
    return {"open": True}


urlpatterns = [
    path("auth/", include("jwt_sessions.urls")),
    path("ninja/", api.urls),
]
