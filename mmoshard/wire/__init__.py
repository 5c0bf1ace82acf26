"""The session protocol: codec, framing, TCP and WebSocket transports, sessions and the Python client."""
