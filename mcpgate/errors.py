"""The typed error tree: every failure mcpgate reports has a stable `code`, an HTTP status and a JSON-RPC code.

    McpgateError
    ├── ConfigError                  config.invalid            (start-up / reload; never on the wire)
    ├── ProtocolError                                          bad input from a client or upstream
    │   ├── BodyTooLarge             protocol.body_too_large        413
    │   ├── HeaderTooLarge           protocol.header_too_large      431
    │   ├── MalformedHttp            protocol.malformed_http        400
    │   ├── MalformedJson            protocol.malformed_json        400 / -32700
    │   ├── InvalidUtf8              protocol.invalid_utf8          400 / -32700
    │   ├── NonFiniteNumber          protocol.non_finite_number     400 / -32700
    │   ├── LoneSurrogate            protocol.lone_surrogate        400 / -32700
    │   ├── UnsafeInteger            protocol.unsafe_integer        400 / -32600
    │   ├── DuplicateKey             protocol.duplicate_key         400 / -32600
    │   ├── CaseVariantKey           protocol.case_variant_key      400 / -32600
    │   ├── NestingTooDeep           protocol.nesting_too_deep      400 / -32600
    │   ├── InvalidEnvelope          protocol.invalid_envelope      400 / -32600
    │   ├── InvalidParams            protocol.invalid_params        400 / -32602
    │   ├── BatchNotAllowed          protocol.batch_not_allowed     400 / -32600
    │   ├── HeaderMismatch           protocol.header_mismatch       400 / -32020
    │   ├── UnsupportedContentType   protocol.unsupported_media     415
    │   ├── SseEventTooLarge         protocol.sse_event_too_large   (stream error)
    │   ├── OriginNotAllowed         protocol.origin_not_allowed    403
    │   ├── UnknownPath              protocol.unknown_path          404 (only the MCP endpoint is forwarded)
    │   └── InvalidSession           protocol.invalid_session       400 (ambiguous or malformed session id)
    ├── IdentityError                identity.invalid               401 (.data: www_authenticate)
    │   ├── InvalidToken             identity.invalid_token         401
    │   ├── IdentityRequired         identity.required              401
    │   ├── AmbiguousIdentity        identity.ambiguous_header      401
    │   ├── UntrustedIdentity        identity.untrusted             401
    │   ├── MalformedIdentity        identity.malformed             401
    │   └── SessionPrincipalMismatch identity.session_mismatch      404 (session owned by another principal)
    ├── PolicyDenied                 policy.denied                  200 / -32001 (the rule is named)
    ├── UpstreamError                                               the server behind us failed
    │   ├── UpstreamUnavailable      upstream.unavailable           502 / -32603
    │   ├── UpstreamReset            upstream.reset                 502 / -32603
    │   ├── UpstreamTimeout          upstream.timeout               504 / -32603
    │   └── UpstreamProtocolError    upstream.protocol_error        502 / -32603
    ├── Overloaded                   gateway.overloaded             503 / -32603
    └── AuditUnavailable             audit.unavailable              503 / -32603 (sink failing closed)

Libraries' exceptions are translated at the boundary that calls them; `mcpgate.proxy.responses` is the one
table that renders these into HTTP/JSON-RPC answers. Messages are lowercase, specific, user input in backticks.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AmbiguousIdentity",
    "AuditUnavailable",
    "BatchNotAllowed",
    "BodyTooLarge",
    "CaseVariantKey",
    "ConfigError",
    "DuplicateKey",
    "HeaderMismatch",
    "HeaderTooLarge",
    "IdentityError",
    "IdentityRequired",
    "InvalidEnvelope",
    "InvalidParams",
    "InvalidSession",
    "InvalidToken",
    "InvalidUtf8",
    "LoneSurrogate",
    "MalformedHttp",
    "MalformedIdentity",
    "MalformedJson",
    "McpgateError",
    "NestingTooDeep",
    "NonFiniteNumber",
    "OriginNotAllowed",
    "Overloaded",
    "PolicyDenied",
    "ProtocolError",
    "SessionPrincipalMismatch",
    "SseEventTooLarge",
    "UnknownPath",
    "UnsafeInteger",
    "UnsupportedContentType",
    "UntrustedIdentity",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamReset",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "all_error_classes",
]

# JSON-RPC codes. The MCP spec reserves -32020..-32099; mcpgate's own denial code sits in the
# implementation-defined "legacy" sub-range -32000..-32019 that SDKs already treat as server errors.
JSONRPC_PARSE_ERROR = -32700
JSONRPC_INVALID_REQUEST = -32600
JSONRPC_METHOD_NOT_FOUND = -32601
JSONRPC_INVALID_PARAMS = -32602
JSONRPC_INTERNAL_ERROR = -32603
JSONRPC_HEADER_MISMATCH = -32020
JSONRPC_POLICY_DENIED = -32001


class McpgateError(Exception):
    """Root of every error mcpgate raises on purpose."""

    code: ClassVar[str] = "mcpgate.error"
    http_status: ClassVar[int] = 500
    jsonrpc_code: ClassVar[int] = JSONRPC_INTERNAL_ERROR

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data: dict[str, Any] = data or {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data:
            out.update(self.data)
        return out


class ConfigError(McpgateError):
    """A config or policy file a person wrote is invalid: names the file, line and key path."""

    code = "config.invalid"
    http_status = 500

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 path: str | None = None) -> None:
        self.file, self.line, self.path = file, line, path
        where = ":".join(p for p in (file, str(line) if line else None) if p)
        location = f"{where}: " if where else ""
        at = f" (at `{path}`)" if path else ""
        super().__init__(f"{location}{message}{at}", data={"file": file, "line": line, "path": path})


class ProtocolError(McpgateError):
    code = "protocol.error"
    http_status = 400
    jsonrpc_code = JSONRPC_INVALID_REQUEST


class BodyTooLarge(ProtocolError):
    code = "protocol.body_too_large"
    http_status = 413


class HeaderTooLarge(ProtocolError):
    code = "protocol.header_too_large"
    http_status = 431


class MalformedHttp(ProtocolError):
    code = "protocol.malformed_http"


class MalformedJson(ProtocolError):
    code = "protocol.malformed_json"
    jsonrpc_code = JSONRPC_PARSE_ERROR


class InvalidUtf8(MalformedJson):
    code = "protocol.invalid_utf8"


class NonFiniteNumber(MalformedJson):
    code = "protocol.non_finite_number"


class LoneSurrogate(MalformedJson):
    code = "protocol.lone_surrogate"


class UnsafeInteger(ProtocolError):
    """An integer beyond ±(2**53 - 1): JavaScript and Go `any` decoders round it, so they read another number."""

    code = "protocol.unsafe_integer"


class DuplicateKey(ProtocolError):
    code = "protocol.duplicate_key"


class CaseVariantKey(ProtocolError):
    code = "protocol.case_variant_key"


class NestingTooDeep(ProtocolError):
    code = "protocol.nesting_too_deep"


class InvalidEnvelope(ProtocolError):
    code = "protocol.invalid_envelope"


class InvalidParams(ProtocolError):
    code = "protocol.invalid_params"
    jsonrpc_code = JSONRPC_INVALID_PARAMS


class BatchNotAllowed(ProtocolError):
    code = "protocol.batch_not_allowed"


class HeaderMismatch(ProtocolError):
    code = "protocol.header_mismatch"
    jsonrpc_code = JSONRPC_HEADER_MISMATCH


class UnsupportedContentType(ProtocolError):
    code = "protocol.unsupported_media"
    http_status = 415


class SseEventTooLarge(ProtocolError):
    code = "protocol.sse_event_too_large"
    http_status = 502


class OriginNotAllowed(ProtocolError):
    code = "protocol.origin_not_allowed"
    http_status = 403


class UnknownPath(ProtocolError):
    code = "protocol.unknown_path"
    http_status = 404


class InvalidSession(ProtocolError):
    code = "protocol.invalid_session"


class IdentityError(McpgateError):
    code = "identity.invalid"
    http_status = 401
    jsonrpc_code = JSONRPC_INVALID_REQUEST


class InvalidToken(IdentityError):
    """A bearer token was presented and failed verification (signature, iss, aud, exp, nbf, algorithm)."""

    code = "identity.invalid_token"


class IdentityRequired(IdentityError):
    """No configured source established an identity and anonymous callers are not allowed."""

    code = "identity.required"


class TokenInQuery(IdentityError):
    """An `access_token` in the request URI (RFC 6750 §2.3): the MCP spec forbids it, and URIs end up in
    logs, caches and the upstream's request line. Refused whatever identity sources are configured."""

    code = "identity.token_in_query"


class AmbiguousIdentity(IdentityError):
    """More than one copy of an identity header (or Authorization) arrived: never pick one."""

    code = "identity.ambiguous_header"


class UntrustedIdentity(IdentityError):
    """Identity material came from where it may not (e.g. an XFCC element no trusted proxy added)."""

    code = "identity.untrusted"


class MalformedIdentity(IdentityError):
    """An identity header or certificate could not be parsed into a canonical principal."""

    code = "identity.malformed"


class SessionPrincipalMismatch(IdentityError):
    """A session id was presented by a principal other than the one that created it."""

    code = "identity.session_mismatch"
    # 404 as for an unknown session: tells a hijacker nothing, and SDK clients re-initialize on 404.
    http_status = 404


class PolicyDenied(McpgateError):
    code = "policy.denied"
    # 200: legacy-era Python clients hang on any other status for a request (compendium §7.3).
    http_status = 200
    jsonrpc_code = JSONRPC_POLICY_DENIED


class UpstreamError(McpgateError):
    code = "upstream.error"
    http_status = 502
    jsonrpc_code = JSONRPC_INTERNAL_ERROR


class UpstreamUnavailable(UpstreamError):
    code = "upstream.unavailable"


class UpstreamReset(UpstreamError):
    code = "upstream.reset"


class UpstreamTimeout(UpstreamError):
    code = "upstream.timeout"
    http_status = 504


class UpstreamProtocolError(UpstreamError):
    code = "upstream.protocol_error"


class Overloaded(McpgateError):
    code = "gateway.overloaded"
    http_status = 503


class AuditUnavailable(McpgateError):
    """The audit log cannot record (start-up, disk full, I/O error, queue full) and is failing closed."""

    code = "audit.unavailable"
    http_status = 503


def all_error_classes() -> list[type[McpgateError]]:
    """Every concrete error class, for the docs test (each code must be documented)."""
    seen: list[type[McpgateError]] = []
    stack: list[type[McpgateError]] = [McpgateError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
