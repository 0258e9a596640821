"""The example's user admin: Django's own, with each user's JWT sessions on their page."""
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from jwt_sessions.admin import UserSessionsAdminMixin

admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class UserAdmin(UserSessionsAdminMixin, DjangoUserAdmin):
    pass
