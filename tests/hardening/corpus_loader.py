"""Loads `corpus/cases.yaml` into request bytes and expectations (shared by the corpus test and the reporter)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).parent / "corpus" / "cases.yaml"

E = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}'
D = b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_customer","arguments":{"id":"c1"}}}'
_SUBST = {
    b"{E_LEN}": str(len(E)).encode(), b"{E_HEX}": b"%x" % len(E), b"{E}": E,
    b"{D_LEN}": str(len(D)).encode(), b"{D_HEX}": b"%x" % len(D), b"{D}": D,
}
CLASSES = tuple(f"S{i}" for i in range(1, 20))


@dataclass
class Case:
    id: str
    cls: str
    expect: str
    spec: dict[str, Any]
    request: bytes | list[bytes] = b""
    body: bytes = b""
    xfail: str | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def _bytes(text: str, latin1: bool) -> bytes:
    return text.encode("latin-1" if latin1 else "utf-8")


def _subst(raw: bytes) -> bytes:
    for k, v in _SUBST.items():
        raw = raw.replace(k, v)
    return raw


def _build(spec: dict[str, Any]) -> tuple[bytes | list[bytes], bytes, list[tuple[bytes, bytes]]]:
    from tests.hardening.conftest import post

    latin1 = bool(spec.get("latin1"))
    if "raw" in spec:
        return _subst(_bytes(spec["raw"], latin1)), b"", []
    if "raw_parts" in spec:
        return [_subst(_bytes(t, latin1)) * n for t, n in spec["raw_parts"]], b"", []
    if "parts" in spec:
        body = b"".join(_bytes(t, latin1) * n for t, n in spec["parts"])
    else:
        body = _bytes(spec.get("body", ""), latin1)
    headers = [(_bytes(k, latin1), _bytes(str(v), latin1)) for k, v in spec.get("headers", [])]
    if "many_headers" in spec:
        headers += [(b"x-h%d" % i, b"v") for i in range(spec["many_headers"])]
    if "big_header" in spec:
        headers.append((b"x-big", b"a" * spec["big_header"]))
    version = spec.get("version", "2025-06-18")
    if "chunk_every" in spec:
        n = spec["chunk_every"]
        head = post(b"", headers=headers, version=version).split(b"content-length")[0]
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + n]), body[i:i + n]) for i in range(0, len(body), n))
        return head + b"transfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n", body, headers
    return post(body, headers=headers, version=version), body, headers


def load_cases() -> list[Case]:
    doc = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    out: list[Case] = []
    seen: set[str] = set()
    ignore_xfail = os.environ.get("HARDEN_IGNORE_XFAIL") == "1"
    for spec in doc["cases"]:
        cid = spec["id"]
        if cid in seen:
            raise ValueError(f"duplicate corpus id `{cid}`")
        seen.add(cid)
        if spec["class"] not in CLASSES:
            raise ValueError(f"corpus case `{cid}` has unknown class `{spec['class']}`")
        case = Case(cid, spec["class"], spec["expect"], spec, xfail=None if ignore_xfail else spec.get("xfail"))
        if "scenario" not in spec:
            case.request, case.body, case.headers = _build(spec)
        out.append(case)
    return out
