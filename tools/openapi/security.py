"""An OpenAPI document's security schemes as secret slots, masked presets and the real secrets behind them.

Each scheme's secret comes from the provider's `secrets` option, else from the environment variable
`CODETOOL_SECRET_<SCHEME_NAME_IN_UPPER_SNAKE_CASE>` (`apiKeyAuth` -> `CODETOOL_SECRET_API_KEY_AUTH`).

    apiKey in header          -> header <name>: <secret>
    apiKey in query           -> query parameter <name>=<secret>
    http bearer, oauth2,
    openIdConnect             -> Authorization: Bearer <secret> (give the access token)
    http basic                -> Authorization: Basic <secret>; give "user:password" (encoded here,
                                 host-side) or its base64 already encoded
    apiKey in cookie, mutualTLS, other http schemes -> not supported (the gateway never forwards
                                 cookies); calls go out without them

The sandbox only sees masks (`MASKED_<SCHEME>_SECRET`) in the preset `headers` / `auth_params`.
A scheme without a secret is left out: calls go out without it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codetool_kernel.errors import ConfigError
from tools.secrets import SecretSlot

ENV_PREFIX = "CODETOOL_SECRET_"


@dataclass(frozen=True)
class Credentials:
    """What a tool set needs to authorise its calls."""

    slots: tuple[SecretSlot, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    """Preset headers, values masked."""
    params: Mapping[str, str] = field(default_factory=dict)
    """Preset query parameters, values masked."""
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Mask -> real value (also the forms an upstream might echo, e.g. basic auth's `user:password`)."""
    problems: tuple[str, ...] = ()
    """One line per scheme that cannot be used (no secret, unsupported), for a warning at start."""


def env_name(scheme: str) -> str:
    """The environment variable holding `scheme`'s secret: `CODETOOL_SECRET_` + its name in UPPER_SNAKE_CASE."""
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", scheme)
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]+", "_", snake).strip("_").upper()


def read_credentials(document: Mapping[str, Any], given: Mapping[str, str], environ: Mapping[str, str]) -> Credentials:
    """Slots, masked presets and secrets for every usable security scheme of `document`."""
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    unknown = sorted(set(given) - set(schemes))
    if unknown:
        known = ", ".join(map(str, schemes)) or "none"
        raise ConfigError(f"openapi provider: secrets for unknown security scheme(s) {', '.join(unknown)}; the spec has: {known}")
    slots: list[SecretSlot] = []
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    secrets: dict[str, str] = {}
    problems: list[str] = []
    for name, scheme in schemes.items():
        place, key, template = _placement(scheme)
        if place is None:
            problems.append(f"security scheme {name!r} ({_kind(scheme)}) is not supported; calls go out without it")
            continue
        secret = given.get(name) or environ.get(env_name(name)) or ""
        if not secret:
            problems.append(f"security scheme {name!r} has no secret (option secrets or env {env_name(name)})")
            continue
        taken = headers if place == "header" else params
        if key.lower() in {k.lower() for k in taken}:
            problems.append(f"security scheme {name!r} would set {place} {key!r} again; only the first scheme's is used")
            continue
        mask = env_name(name).replace(ENV_PREFIX, "MASKED_", 1) + "_SECRET"
        if template.startswith("Basic ") and ":" in secret:
            secrets[mask + "_PLAIN"] = secret  # scrubbed from answers too
            secret = base64.b64encode(secret.encode()).decode()
        slots.append(SecretSlot(mask=mask, place=place, name=key, template=template))
        taken[key] = template.replace("{secret}", mask)
        secrets[mask] = secret
    return Credentials(tuple(slots), headers, params, secrets, tuple(problems))


def _placement(scheme: Any) -> tuple[Any, str, str]:
    """(place, header or parameter name, template) of a scheme, or (None, "", "") when unsupported."""
    if not isinstance(scheme, Mapping):
        return None, "", ""
    kind = scheme.get("type")
    if kind == "apiKey" and scheme.get("in") in ("header", "query") and scheme.get("name"):
        return scheme["in"], str(scheme["name"]), "{secret}"
    if kind == "http" and str(scheme.get("scheme", "")).lower() == "basic":
        return "header", "Authorization", "Basic {secret}"
    if (kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer") or kind in ("oauth2", "openIdConnect"):
        return "header", "Authorization", "Bearer {secret}"
    return None, "", ""


def _kind(scheme: Any) -> str:
    if not isinstance(scheme, Mapping):
        return "malformed"
    detail = scheme.get("in") or scheme.get("scheme")
    return f"{scheme.get('type')} {detail}" if detail else str(scheme.get("type"))
