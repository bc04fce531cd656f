"""Defaults more than one tier reads (broker, database, ports, /users split, body limit,
trace sampling).

Each is written here once; `.env.example` documents them (tests/unit/test_settings.py checks).
"""

from __future__ import annotations

AMQP_URI = "amqp://guest:guest@localhost:5672/"
MONGO_URI = "mongodb://localhost:27017"
MONGO_DB = "micro"
# Percentage of /users traffic the gateway sends to v1 (SPEC §5).
P_VALUE = 100
GATEWAY_HOST = "127.0.0.1"
GATEWAY_PORT = 8000
EDGE_V1_PORT = 8101
EDGE_V2_PORT = 8102
# Request bodies over this are 413, at the gateway and again at the edge (SPEC §6).
MAX_BODY_BYTES = 64 * 1024
# Share of new traces recorded (0..1), by every edge and worker and by the gateway that
# starts a request's trace (common/tracing.py, kong/lua_config.py).
TRACE_SAMPLE_RATIO = 1.0
