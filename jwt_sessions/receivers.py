"""Revocation triggers: a password change, a deactivated or deleted user."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import get_hasher, identify_hasher
from django.db.models.signals import post_delete, post_init, post_save, pre_delete
from django.dispatch import receiver

from . import services
from .conf import jwt_settings
from .models import RevokeReason, Session
from .redis import mirror
from .shared_signals.outbox import record_credential_change

_SEEN = "_jwt_sessions_seen"


@receiver(post_init, sender=settings.AUTH_USER_MODEL, dispatch_uid="jwt_sessions_user_init")
def remember_credentials(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Remember the password hash and active flag as loaded, to spot changes on save."""
    instance.__dict__[_SEEN] = (instance.__dict__.get("password"),
                                    instance.__dict__.get("is_active", True))


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="jwt_sessions_user_saved")
def revoke_on_credential_change(sender: Any, instance: Any, created: bool,
                                update_fields: Any = None, **kwargs: Any) -> None:
    """Compare what this save wrote with what the database held before it.

    A created user has no sessions yet, but is remembered too: otherwise its first
    later save would look like a password change. A password hash that was never loaded
    (`.only(...)`) counts as changed once written: the sessions still bound to another
    hash are revoked.
    """
    password, was_active = instance.__dict__.get(_SEEN, (None, True))
    written = instance.__dict__.get("password")
    password_written = (update_fields is None or "password" in update_fields) and (
        written is not None and written != password)
    upgrade = password_written and _is_hash_upgrade(password, instance, update_fields)
    if update_fields is None or "is_active" in update_fields:
        now_active = getattr(instance, "is_active", True)
        deactivated, was_active = was_active and not now_active, now_active
    else:
        deactivated = False
    instance.__dict__[_SEEN] = (written if password_written else password, was_active)
    if created:
        return
    if deactivated:
        services.revoke_user_sessions(instance, RevokeReason.USER_DEACTIVATED)
    elif upgrade:
        services.rebind_sessions(instance, old_password=password)
    elif password_written:
        record_credential_change(instance.pk)  # Shared Signals
        if jwt_settings.REVOKE_ON_PASSWORD_CHANGE:
            services.revoke_for_password_change(instance)


def _is_hash_upgrade(old_hash: str | None, instance: Any, update_fields: Any) -> bool:
    """True when Django re-hashed the same password at login (check_password's setter,
    e.g. after a Django upgrade raised the PBKDF2 iterations): not a password change.

    That setter calls set_password(), clears `_password`, and saves the password field
    alone; and it only rewrites a hash Django considers outdated. Anything else that
    writes a new hash (set_unusable_password, an assignment, a full save) is a change.
    """
    if old_hash is None or update_fields is None or set(update_fields) != {"password"}:
        return False
    if getattr(instance, "_password", None) is not None:
        return False
    try:
        old_hasher = identify_hasher(old_hash)
    except ValueError:
        return False
    preferred = get_hasher()
    return old_hasher.algorithm != preferred.algorithm or preferred.must_update(old_hash)


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="jwt_sessions_user_deleted")
def forget_deleted_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A deleted user's rows cascade away; their tokens must die in Redis too."""
    services.forget_user_sessions(instance.pk)


@receiver(post_delete, sender=Session, dispatch_uid="jwt_sessions_session_deleted")
def forget_deleted_session(sender: Any, instance: Session, **kwargs: Any) -> None:
    """A row deleted through the ORM takes its Redis keys with it (once committed)."""
    mirror.forget_deleted(mirror.keys_of(instance))
