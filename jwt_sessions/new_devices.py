"""New-device detection at login: a device, country or network that none of the user's
recent sessions used.

Each session row keeps what is compared (`device_family`, `country`, `network`); a login
compares its own against the user's most recent sessions still in the table (active ones,
and ended ones until `clearjwtsessions` deletes them after AUDIT_RETENTION). A value
counts as new only when those sessions knew that kind of value: a user's first login, a
login right after GeoIP was switched on, or one without a User-Agent is new to nobody, so
upgrading or configuring never sends a wave of alerts.

What was new goes to the `new_device_login` signal and, with NEW_DEVICE_EMAIL, to the
user by email.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network
from typing import Any

from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import models
from django.template.loader import render_to_string

from . import signals
from .clients import ClientInfo
from .conf import jwt_settings
from .geoip import Place
from .models import Session

logger = logging.getLogger("jwt_sessions")

# How many of the user's latest sessions a login is compared with: one bounded query.
RECENT_SESSIONS = 50
IPV4_PREFIX, IPV6_PREFIX = 24, 64

SUBJECT_TEMPLATE = "jwt_sessions/email/new_device_subject.txt"
TEXT_TEMPLATE = "jwt_sessions/email/new_device_message.txt"
HTML_TEMPLATE = "jwt_sessions/email/new_device_message.html"


class Novelty(models.TextChoices):
    """What a login can have that the user's recent sessions did not."""

    DEVICE = "device"
    COUNTRY = "country"
    NETWORK = "network"


@dataclass(frozen=True)
class Whereabouts:
    """What a login is compared by; the names of Session fields."""

    device_family: str = ""
    country: str = ""
    network: str = ""


def network_of(ip: str | None) -> str:
    """The network an address belongs to for this purpose: its /24 (IPv4) or /64 (IPv6;
    one host picks addresses from its /64 at will); "" without an address."""
    if not ip:
        return ""
    address = ip_address(ip)
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = IPV6_PREFIX if isinstance(address, IPv6Address) else IPV4_PREFIX
    return str(ip_network(f"{address}/{prefix}", strict=False))


def device_family_of(info: ClientInfo) -> str:
    """"Chrome / macOS / pc": the device without versions, so a browser update is not a
    new device; "" when the request told nothing (no User-Agent)."""
    if not info.user_agent:
        return ""
    parts = (info.browser_family or "?", info.os or "?", info.device_type)
    return " / ".join(parts)[:200]


def whereabouts_of(info: ClientInfo, place: Place) -> Whereabouts:
    return Whereabouts(device_family_of(info), place.country or "", network_of(info.ip_address))


def novelty_of(user: Any, login: Whereabouts) -> list[str]:
    """What `login` has that none of the user's recent sessions had (values of
    `Novelty`), in the order device, country, network."""
    compared = {Novelty.DEVICE: "device_family", Novelty.COUNTRY: "country",
                Novelty.NETWORK: "network"}
    recent = list(Session.objects.filter(user_id=user.pk).order_by("-created_at")
                  .values(*compared.values())[:RECENT_SESSIONS])
    new = []
    for kind, field in compared.items():
        value = getattr(login, field)
        known = {row[field] for row in recent} - {""}
        if value and known and value not in known:
            new.append(kind.value)
    return new


def announce(user: Any, session: Session, novelty: list[str], request: Any = None) -> None:
    """Tell the project (`new_device_login`) and, with NEW_DEVICE_EMAIL, the user. The
    login is committed by now: a receiver's error is logged, and the login stands."""
    for receiver, result in signals.new_device_login.send_robust(
            sender=Session, user=user, session=session, novelty=novelty, request=request):
        if isinstance(result, Exception):
            logger.error("new_device_login receiver %r failed for session %s", receiver,
                         session.pk, exc_info=result)
    if jwt_settings.NEW_DEVICE_EMAIL:
        send_new_device_email(user, session, novelty)


def send_new_device_email(user: Any, session: Session, novelty: list[str]) -> bool:
    """Email the user about a sign-in from a new device, through Django's mail API and
    overridable templates; False when the user has no address or sending failed (the
    login has succeeded: a mail server's trouble must not undo it)."""
    address = getattr(user, get_user_model().get_email_field_name(), "") or ""
    if not address:
        return False
    context = {"user": user, "session": session, "novelty": novelty,
               "new_device": Novelty.DEVICE in novelty,
               "new_country": Novelty.COUNTRY in novelty,
               "new_network": Novelty.NETWORK in novelty}
    subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
    try:
        send_mail(subject, render_to_string(TEXT_TEMPLATE, context), None, [address],
                  html_message=render_to_string(HTML_TEMPLATE, context))
    except Exception:  # any backend's failure: log it, the login stands
        logger.exception("New-device email for session %s could not be sent", session.pk)
        return False
    return True
