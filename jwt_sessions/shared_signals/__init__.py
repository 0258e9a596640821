"""Shared Signals: telling other services that a session ended, and hearing it from them.

The OpenID Shared Signals Framework (SSF) with CAEP and RISC events: this deployment
transmits a Security Event Token (SET, RFC 8417) for every revocation, pushed (RFC 8935)
from a durable outbox or polled (RFC 8936), and receives the SETs of the transmitters it
trusts. Off unless `JWT_SESSIONS["SHARED_SIGNALS"]` is set.
"""
