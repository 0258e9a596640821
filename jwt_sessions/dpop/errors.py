"""DPoP refusals: 401 `{"detail", "code"}` with a `WWW-Authenticate: DPoP` challenge
naming the RFC 9449 error and the accepted algorithms.

Not DRF AuthenticationFailed subclasses: DRF replaces those exceptions' challenge with
the view's first authentication class's, and this one must reach the client as is.
"""
from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status

from ..exceptions import _CodedMixin
from . import nonces
from .settings import dpop_settings

StrOrPromise = str | Promise


def challenge(error: str | None = None) -> str:
    """`DPoP [error="..", ]algs=".."`: what a client needs to answer with a proof."""
    algs = " ".join(dpop_settings().algorithms)
    return f'DPoP error="{error}", algs="{algs}"' if error else f'DPoP algs="{algs}"'


class DPoPError(_CodedMixin, exceptions.APIException):
    """Base of the DPoP refusals; `error` is the RFC's code for the challenge."""

    status_code = status.HTTP_401_UNAUTHORIZED
    error = "invalid_dpop_proof"

    def __init__(self, detail: StrOrPromise | None = None) -> None:
        super().__init__(detail)
        self.auth_header = challenge(self.error)
        # Sent as `DPoP-Nonce` with the refusal when server nonces are on.
        self.dpop_nonce = nonces.new_nonce() if dpop_settings().nonce else None


class InvalidDPoPProof(DPoPError):
    """The proof is missing, malformed, stale, replayed, for another request, or signed
    by another key than the token's or session's."""

    default_detail = _("The DPoP proof is missing or invalid.")
    default_code = "invalid_dpop_proof"


class UseDPoPNonce(DPoPError):
    """Server nonces are on and the proof carries no current one: retry with the nonce
    of the `DPoP-Nonce` header."""

    error = "use_dpop_nonce"
    default_detail = _("Sign the DPoP proof with the nonce in the DPoP-Nonce header.")
    default_code = "use_dpop_nonce"


class DPoPSchemeMismatch(DPoPError):
    """A DPoP-bound access token sent as Bearer, a bearer token sent as DPoP, or a
    bearer token where DPoP is required."""

    error = "invalid_token"
    default_detail = _("This access token must be sent as 'Authorization: DPoP <token>' "
                       "with a DPoP proof.")
    default_code = "token_invalid"
