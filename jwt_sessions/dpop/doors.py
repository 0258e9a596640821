"""What the doors call: the binding a login or refresh asks for, and the proof check of
a request that presents an access token (DRF, django-ninja, Channels, the Python API).

Every door authenticates a token through `authenticate` (or `aauthenticate`): a token
bound to a key (`cnf.jkt`) passes only with the DPoP scheme and a proof by that key for
this very request; a bearer token only with the Bearer scheme, and not at all when DPoP
is required. The proof's claims are checked before Redis is asked; its `jti` is claimed
in the access check's round trip, and its signature verified while Redis answers (a
claim made for a forged proof is dropped again). A LOCAL_CACHE hit answers the session
check, never this one.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.crypto import constant_time_compare
from django.utils.encoding import escape_uri_path
from django.utils.translation import gettext_lazy as _

from .. import metrics
from ..access import acheck_access_token, check_access_token, decode_claims
from ..tokens import AccessClaims
from . import nonces, replay
from .errors import DPoPSchemeMismatch, InvalidDPoPProof, challenge
from .proofs import Proof, read_proof, verify_proof
from .settings import dpop_settings

SCHEME = "DPoP"
HEADER = "DPoP"
NONCE_HEADER = "DPoP-Nonce"


@dataclass(frozen=True)
class Presented:
    """An access token as one request presents it: the scheme it came with, the proof
    header (None without one), and the request the proof must name (its URI built only
    when a proof is checked, so a bearer request never pays for it)."""

    token: str
    as_dpop: bool
    proof: str | None
    method: str
    uri: Callable[[], str]


def request_uri(request: Any) -> str:
    """The request's absolute URI without its query: a proof's `htu` (what
    `build_absolute_uri()` gives, its query not built only to be cut off)."""
    return f"{request.scheme}://{request.get_host()}{escape_uri_path(request.path)}"


def proof_header(request: Any) -> str | None:
    return request.META.get("HTTP_DPOP")


def presented_by_request(request: Any, scheme: str, token: str) -> Presented:
    """How a Django (or DRF) request presents `token` under the Authorization `scheme`."""
    return Presented(token, scheme.lower() == SCHEME.lower(), proof_header(request),
                     request.method, lambda: request_uri(request))


# A browser cannot set headers on a WebSocket: it offers the proof as a subprotocol,
# next to the token's (`jwt_sessions.bearer.<token>`), for `GET wss://host/path`.
PROOF_SUBPROTOCOL_PREFIX = "jwt_sessions.dpop."


def presented_by_handshake(scope: dict[str, Any], token: str) -> Presented:
    """How a WebSocket handshake presents `token`: with `Authorization: DPoP` and a
    `DPoP` header (native clients), or as subprotocols (browsers); its `htu` is the
    socket's URL (`ws://` or `wss://`) without the query."""
    headers = scope.get("headers") or ()
    authorization = [value for name, value in headers if name.lower() == b"authorization"]
    proofs = [value.decode("latin-1") for name, value in headers if name.lower() == b"dpop"]
    proofs += [p[len(PROOF_SUBPROTOCOL_PREFIX):] for p in scope.get("subprotocols") or ()
               if p.startswith(PROOF_SUBPROTOCOL_PREFIX)]
    if len(proofs) > 1:
        raise InvalidDPoPProof(_("A handshake carries one DPoP proof."))
    if authorization:
        as_dpop = authorization[0].decode("latin-1").split(" ", 1)[0].lower() == "dpop"
    else:
        as_dpop = bool(proofs)
    uri = (f"{scope.get('scheme', 'ws')}://{handshake_host(headers)}"
           f"{scope.get('root_path', '')}{scope['path']}")
    return Presented(token, as_dpop, proofs[0] if proofs else None, "GET", lambda: uri)


def handshake_host(headers: Any) -> str:
    """The handshake's host as `HttpRequest.get_host()` would take it (X-Forwarded-Host
    under USE_X_FORWARDED_HOST, then Host; ALLOWED_HOSTS with DEBUG's local defaults),
    or "" (which no proof's `htu` matches): a proof made for another server that got
    the same token must not pass by naming that server's host."""
    values = {name.lower(): value.decode("latin-1") for name, value in reversed(headers)}
    host = (settings.USE_X_FORWARDED_HOST and values.get(b"x-forwarded-host")
            or values.get(b"host", ""))
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    return host if domain and validate_host(domain, allowed) else ""


# ------------------------------------------------------------------ login and refresh
@dataclass(frozen=True)
class TokenRequestKey:
    """The key a login or refresh proved it holds ("" for none), its proof verified but
    not yet spent: a login spends it once the password is right (a failed login leaves
    no Redis key behind)."""

    jkt: str
    claim: replay.ProofClaim | None

    def spend(self) -> str:
        """Claim the proof (InvalidDPoPProof if replayed); returns the thumbprint."""
        if self.claim is not None:
            self.claim.spend()
        return self.jkt


def key_of_token_request(request: Any) -> TokenRequestKey:
    """The key a login or refresh shows ("" without a proof, refused when DPoP is
    required), its proof verified against this request."""
    value = proof_header(request)
    if value is None:
        if dpop_settings().required:
            raise InvalidDPoPProof(_("A DPoP proof is required."))
        return TokenRequestKey("", None)
    proof = verify_proof(value, method=request.method, uri=request_uri(request))
    return TokenRequestKey(proof.jkt, replay.claim_of(proof))


def binding_after_refresh(bound: str, presented: str) -> str:
    """The key a session is bound to after a refresh: a bound session needs a proof by
    its own key; a bearer session that shows a proof becomes bound to it."""
    if not bound:
        return presented
    if not presented:
        raise InvalidDPoPProof(_("This session is bound to a DPoP key: send a DPoP proof."))
    if not constant_time_compare(bound, presented):
        raise InvalidDPoPProof(_("The DPoP proof is signed by another key than the "
                                 "session's."))
    return bound


# ------------------------------------------------------------------ access tokens
def _proof_for_access(claims: AccessClaims, presented: Presented | None) -> Proof | None:
    """The proof the request must spend (None: a bearer token rightly sent as Bearer),
    its signature not yet checked. `presented` None: the token came alone, as Bearer
    with no proof."""
    if presented is None:
        presented = Presented("", False, None, "", str)
    if claims.dpop_jkt is None:
        if presented.as_dpop:
            raise DPoPSchemeMismatch(_("This access token is not bound to a DPoP key: "
                                       "send it as 'Authorization: Bearer <token>'."))
        if dpop_settings().required:
            raise DPoPSchemeMismatch()
        return None
    if not presented.as_dpop:
        raise DPoPSchemeMismatch()
    if presented.proof is None:
        raise InvalidDPoPProof(_("A DPoP proof is required with this access token."))
    proof = read_proof(presented.proof, method=presented.method, uri=presented.uri(),
                       access_token=presented.token)
    if not constant_time_compare(proof.jkt, claims.dpop_jkt):
        raise InvalidDPoPProof(_("The DPoP proof is signed by another key than the "
                                 "token's."))
    return proof


def _claim(token: str, presented: Presented | None) -> replay.ProofClaim | None:
    claims = decode_claims(token)
    proof = _proof_for_access(claims, presented)
    return None if proof is None else replay.claim_of(proof, claims.session_id)


@metrics.timed_access_check
def authenticate(token: str, presented: Presented | None) -> AccessClaims:
    """The access check of a door: the token's signature, its binding (the proof's
    claims), then its session, with the proof's jti claimed in the same round trip and
    its signature verified while Redis answers. Timed as a whole, so a token refused
    at its signature or binding counts as a check too."""
    return check_access_token(token, _claim(token, presented))


@metrics.timed_access_check
async def aauthenticate(token: str, presented: Presented | None) -> AccessClaims:
    """`authenticate` for async code."""
    return await acheck_access_token(token, _claim(token, presented))


# ------------------------------------------------------------------ answers
def authenticate_header(request: Any) -> str | None:
    """The DPoP challenge for a 401 of a request that used the DPoP scheme, or of any
    request when DPoP is required; None when the Bearer challenge fits."""
    scheme = (request.META.get("HTTP_AUTHORIZATION") or "").split(" ", 1)[0]
    if dpop_settings().required or scheme.lower() == SCHEME.lower():
        return challenge()
    return None


def add_nonce(response: Any, exc: Exception | None = None) -> Any:
    """Give the client a nonce (`DPoP-Nonce`) when server nonces are on: the refusal's
    own, or a current one."""
    if dpop_settings().nonce:
        response[NONCE_HEADER] = getattr(exc, "dpop_nonce", None) or nonces.new_nonce()
    return response
