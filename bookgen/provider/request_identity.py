"""What counts as "the same request": the one home of a request's identity.

A reply may be replayed from the response cache only for a request with the same identity:
the same provider, the same endpoint (its normalised ``base_url``, never credentials), the
same model and the same body. Replies of the offline simulator therefore never replay for a
real provider, and one endpoint's never for another's.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

SIMULATOR = "simulator"
SIMULATOR_BASE_URL = "http://simulator.invalid/v1"  # the in-process simulator's pseudo endpoint
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_simulated(config: dict[str, Any]) -> bool:
    """True when the configured provider is bookgen's offline simulator (nothing is billed)."""
    return config["provider"] == SIMULATOR


def normalise_endpoint(base_url: str) -> str:
    """``base_url`` without credentials, default port, case or trailing-slash differences."""
    parts = urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if parts.port is not None and parts.port != DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{parts.port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


def endpoint(config: dict[str, Any]) -> str:
    """The endpoint replies come from: the normalised ``base_url``, or the simulator's."""
    if is_simulated(config):
        return SIMULATOR_BASE_URL
    return normalise_endpoint(config["base_url"])


def origin(config: dict[str, Any]) -> dict[str, Any]:
    """Who answers this config's requests, as every call record states it."""
    return {
        "provider": config["provider"],
        "endpoint": endpoint(config),
        "simulated": is_simulated(config),
    }


def request_key(config: dict[str, Any], request: dict[str, Any]) -> str:
    """The identity of ``request`` (model, messages, every parameter) sent to this config's
    provider and endpoint: the response cache's key."""
    who = origin(config)
    blob = json.dumps(
        {"provider": who["provider"], "endpoint": who["endpoint"], "request": request},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
