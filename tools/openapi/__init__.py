"""Any OpenAPI 3 spec as a tool set: `create_provider("openapi", spec="path/or/URL", ...)`."""

from tools.openapi.endpoint_provider import EndpointToolProvider
from tools.openapi.provider import OpenApiOptions, OpenApiProvider

__all__ = ["EndpointToolProvider", "OpenApiOptions", "OpenApiProvider"]
