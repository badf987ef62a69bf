"""Sandbox Graph API: a local HTTP server that answers like Meta's Conversions API.

Used by tests and demos instead of graph.facebook.com; see ``server.py`` for the
routes and ``rules.py`` for what it accepts and the error codes it answers with.
"""

from uploader.sandbox.server import Faults, SandboxServer, serve_forever

__all__ = ["Faults", "SandboxServer", "serve_forever"]
