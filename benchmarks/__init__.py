"""Benchmarks of jwt_sessions against simplejwt, knox and DRF sessions (run by hand)."""
