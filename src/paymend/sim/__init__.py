"""The simulator's protocol faces: the simulated channels (providers/simulator.py) behind
each real provider's documented wire protocol, so the shipped connectors run against
them in tests, demos and the lab. Each face is an ASGI app: served on a port with uvicorn,
or called in-process through `httpx.ASGITransport` (no sockets)."""
