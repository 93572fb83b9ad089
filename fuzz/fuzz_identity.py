"""Fuzz the identity header parsers (XFCC, Linkerd) and the resolver's anti-spoof stripping."""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mcpgate"]):
    from mcpgate.identity import Credentials, IdentityResolver, principal_from_xfcc
    from mcpgate.identity.spiffe import principal_from_linkerd

_UNTRUSTED = IdentityResolver.from_config({"sources": ["linkerd"], "trusted_proxies": ["10.0.0.0/8"]})
_TRUSTED_XFCC = IdentityResolver.from_config({"sources": ["xfcc"]})
_IDENTITY = {b"l5d-client-id", b"x-forwarded-client-cert"}


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 512))
    for fn in (lambda: principal_from_xfcc(text, ()), lambda: principal_from_linkerd(text, control_plane_ns="l")):
        try:
            fn()
        except Exception as exc:
            from mcpgate.errors import McpgateError

            if not isinstance(exc, McpgateError):
                raise
    headers = []
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        name = fdp.PickValueInList([b"l5d-client-id", b"L5D-Client-Id", b"x-forwarded-client-cert",
                                    b"X-Forwarded-Client-Cert", b"x-mcpgate-principal", b"content-type"])
        headers.append((name, fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))))
    try:
        res = _UNTRUSTED.resolve(Credentials("127.0.0.1", headers))
    except Exception as exc:
        from mcpgate.errors import McpgateError

        if not isinstance(exc, McpgateError):
            raise
    else:
        if not res.principal.anonymous or {k.lower() for k, _ in res.headers} & _IDENTITY:
            raise AssertionError("an untrusted peer's identity header survived")
    _TRUSTED_XFCC.resolve(Credentials("127.0.0.1", headers))


if __name__ == "__main__":
    from fuzz._common import run

    run(one_input)
