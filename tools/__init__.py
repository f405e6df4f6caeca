"""Tool sets, their docs for prompts, the host-side tool gateway and the embedded virtual APIs.

async with create_provider("stabletoolbench") as provider, ToolGateway() as gateway:
    query = create_query_source("stabletoolbench").load(".../G1_instruction.json")[0]
    handler = gateway.session(provider.toolset_for(query), query_id=query.query_id)
"""

from tools.api_docs import render_docs
from tools.function_tools import FunctionTool, FunctionToolsOptions, FunctionToolsProvider, function_tool
from tools.gateway import GatewayConfig, GatewaySession, ToolGateway
from tools.host_tools import HOST_TOOLS_URL, HostTool, HostToolServer, ToolArgumentError, ToolReportedError
from tools.mcp_tools import McpOptions, McpServerSpec, McpToolsProvider
from tools.openapi import EndpointToolProvider, OpenApiOptions, OpenApiProvider
from tools.queries import QuerySource, create_query_source, query_sources, register_query_source
from tools.registry import available_providers, create_provider, register_provider
from tools.response_cache import ResponseCache, adapt_answer, cache_file_parts, standardize
from tools.retrieval import ApiRetriever
from tools.scrubbing import SecretScrubber
from tools.secrets import SecretSlot
from tools.simulators import LlmSimulator, Simulator, TemplateSimulator
from tools.stabletoolbench import StableToolBenchOptions, StableToolBenchProvider, load_tools_dir
from tools.tmdb import TmdbOptions, TmdbProvider, load_tmdb_spec
from tools.toolset import ApiParameter, ApiSpec, Query, Route, ToolProvider, ToolSet
from tools.url_policy import UrlRefused, resolve_target
from tools.virtual_server import VirtualApiServer
from tools.virtual_tmdb import VirtualTmdbServer

__all__ = [
    "ApiParameter",
    "ApiRetriever",
    "ApiSpec",
    "EndpointToolProvider",
    "FunctionTool",
    "FunctionToolsOptions",
    "FunctionToolsProvider",
    "GatewayConfig",
    "GatewaySession",
    "HOST_TOOLS_URL",
    "HostTool",
    "HostToolServer",
    "LlmSimulator",
    "McpOptions",
    "McpServerSpec",
    "McpToolsProvider",
    "OpenApiOptions",
    "OpenApiProvider",
    "Query",
    "QuerySource",
    "ResponseCache",
    "Route",
    "SecretScrubber",
    "SecretSlot",
    "Simulator",
    "StableToolBenchOptions",
    "StableToolBenchProvider",
    "TemplateSimulator",
    "TmdbOptions",
    "TmdbProvider",
    "ToolArgumentError",
    "ToolGateway",
    "ToolProvider",
    "ToolReportedError",
    "ToolSet",
    "UrlRefused",
    "VirtualApiServer",
    "VirtualTmdbServer",
    "adapt_answer",
    "available_providers",
    "cache_file_parts",
    "create_provider",
    "create_query_source",
    "function_tool",
    "load_tmdb_spec",
    "load_tools_dir",
    "query_sources",
    "register_provider",
    "register_query_source",
    "render_docs",
    "resolve_target",
    "standardize",
]
