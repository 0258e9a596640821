"""Revocation triggers: a password change, a deactivated or deleted user (SPEC §4)."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_init, post_save, pre_delete
from django.dispatch import receiver

from . import services
from .conf import jwt_settings
from .models import RevokeReason

_SEEN = "_jwt_sessions_seen"


@receiver(post_init, sender=settings.AUTH_USER_MODEL, dispatch_uid="jwt_sessions_user_init")
def remember_credentials(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Remember the password hash and active flag as loaded, to spot changes on save."""
    instance.__dict__[_SEEN] = (instance.__dict__.get("password"),
                                    instance.__dict__.get("is_active", True))


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="jwt_sessions_user_saved")
def revoke_on_credential_change(sender: Any, instance: Any, created: bool,
                                update_fields: Any = None, **kwargs: Any) -> None:
    if created:
        return
    password, was_active = instance.__dict__.get(_SEEN, (None, True))
    now_active = getattr(instance, "is_active", True)
    changed_password = password is not None and password != instance.password
    instance.__dict__[_SEEN] = (instance.password, now_active)
    if was_active and not now_active:
        services.revoke_user_sessions(instance, RevokeReason.USER_DEACTIVATED)
    elif changed_password and jwt_settings.REVOKE_ON_PASSWORD_CHANGE:
        services.revoke_user_sessions(instance, RevokeReason.PASSWORD_CHANGED)


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="jwt_sessions_user_deleted")
def forget_deleted_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A deleted user's rows cascade away; their tokens must die in Redis too."""
    services.forget_user_sessions(instance.pk)
