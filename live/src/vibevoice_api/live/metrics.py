"""Prometheus series of the live service (served on /metrics with the shared ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SESSIONS = Gauge("vibevoice_live_sessions_open", "Live sessions open now.", ["type"])
SESSIONS_TOTAL = Counter("vibevoice_live_sessions_total", "Live sessions opened.", ["type"])
EVENTS_IN = Counter("vibevoice_live_client_events_total", "Client events received.", ["type"])
EVENTS_OUT = Counter("vibevoice_live_server_events_total", "Server events sent.", ["type"])
ERRORS = Counter("vibevoice_live_errors_total", "error events sent and sessions cut, by code.", ["code"])
TURNS = Counter("vibevoice_live_turns_total", "User audio items committed.")
