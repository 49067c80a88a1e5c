"""An offline OpenAI-compatible chat-completions provider, faithful to DeepSeek and OpenAI.

It writes deterministic textbook sections that follow the prompt's task block, reports usage
(prefix-cache hits, reasoning tokens) as the providers do, streams like them, injects faults on
a seeded schedule, and keeps its own bill (the ledger). Use it in-process through
``make_http_client`` or over loopback HTTP through ``serve`` / ``python -m bookgen.simulator``.
"""

from __future__ import annotations

from bookgen.simulator.app import SimulatedDrop, Simulator
from bookgen.simulator.config import (
    FaultRule,
    SimulatorConfig,
    load_config_file,
    validate_config,
)
from bookgen.simulator.server import SimulatorHTTPServer, make_http_client, serve

__all__ = [
    "FaultRule",
    "SimulatedDrop",
    "Simulator",
    "SimulatorConfig",
    "SimulatorHTTPServer",
    "load_config_file",
    "make_http_client",
    "serve",
    "validate_config",
]
