"""jwt_sessions: JWT authentication for DRF with real, revocable multi-device sessions."""

__version__ = "0.1.0"
