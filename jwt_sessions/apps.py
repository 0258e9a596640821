from django.apps import AppConfig, apps
from django.utils.translation import gettext_lazy as _


class JWTSessionsConfig(AppConfig):
    name = "jwt_sessions"
    verbose_name = _("JWT sessions")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers, throttling  # noqa: F401  (registers checks, receivers)
        from .dpop import checks as dpop_checks  # noqa: F401  (registers its checks)
        from .shared_signals import checks as ssf_checks  # noqa: F401

        if apps.is_installed("django.contrib.admin"):
            from django.core import checks as django_checks

            from .conf import jwt_settings
            from .user_admin import check_user_admin, extend_user_admin

            if jwt_settings.EXTEND_USER_ADMIN:
                extend_user_admin()
            django_checks.register(check_user_admin, django_checks.Tags.admin)
        if apps.is_installed("drf_spectacular"):
            from . import openapi  # noqa: F401  (registers the schema extensions)
