"""`mcpgate policy check|test|explain|schema`: validate, test and explain policy files (docs/policy.md).

Exit codes: 0 ok / allowed, 1 a test failed or a server could not be read, 2 denied (`explain`),
3 invalid policy, test file or finding (`check --against`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import httpx

from mcpgate.cli._common import EXIT_DENIED, EXIT_ERROR, EXIT_INVALID, EXIT_OK
from mcpgate.config.yaml_source import load_package_schema
from mcpgate.errors import ConfigError, McpgateError, UpstreamProtocolError, UpstreamUnavailable
from mcpgate.policy import Finding, Policy, check_against_tools, explain, lint_policy, load_policy
from mcpgate.policy.testing import TestReport, load_tests, policy_files_for, principal_from, run_tests

__all__ = ["fetch_tools", "register"]

_CLIENT_PROTOCOL = "2025-06-18"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("policy", help="check, test and explain policy files",
                              description="Check, test and explain mcpgate policy files.")
    sub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND", required=True)

    check = sub.add_parser("check", help="validate policy files (exit 3 if invalid)")
    check.add_argument("files", nargs="+", metavar="FILE",
                       help="policy files or directories, merged in order")
    check.add_argument("--against", metavar="URL",
                       help="also compare rules with the tools a live MCP server lists (streamable HTTP)")
    check.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                       help="extra header for --against (e.g. authorization); repeatable")
    check.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(handler=_check)

    test = sub.add_parser("test", help="run policy test cases (exit 1 on failure)")
    test.add_argument("files", nargs="*", metavar="FILE",
                      help="policy files; omitted: each test file's own `policy:` (or its sibling X.yaml)")
    test.add_argument("--tests", nargs="+", required=True, metavar="TESTS",
                      help="*.tests.yaml files or directories holding them")
    test.add_argument("--format", choices=("text", "json"), default="text")
    test.set_defaults(handler=_test)

    ex = sub.add_parser("explain",
                        help="decide one request and show every rule considered (exit 2 if denied)")
    ex.add_argument("files", nargs="+", metavar="FILE")
    ex.add_argument("--principal", required=True, metavar="ID|JSON",
                    help="canonical id (spiffe://…, jwt:ISS#SUB, anonymous) or a JSON principal object")
    what = ex.add_mutually_exclusive_group(required=True)
    what.add_argument("--tool", metavar="NAME")
    what.add_argument("--prompt", metavar="NAME")
    what.add_argument("--resource", metavar="URI")
    what.add_argument("--method", metavar="METHOD", help="any other method (with --target if it has one)")
    ex.add_argument("--target", metavar="TARGET", help="target for --method")
    ex.add_argument("--args", metavar="JSON", help="params.arguments as JSON")
    ex.add_argument("--format", choices=("text", "json"), default="text")
    ex.set_defaults(handler=_explain)

    schema = sub.add_parser("schema", help="print the policy file JSON Schema (for editors)")
    schema.add_argument("--tests", action="store_true", help="the test file schema instead")
    schema.set_defaults(handler=_schema)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.format == "json":
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(text)


def _load(args: argparse.Namespace, files: Sequence[str]) -> Policy | int:
    try:
        return load_policy(files)
    except ConfigError as e:
        if args.format == "json":
            _emit(args, {"ok": False, "error": e.to_dict() | {"message": str(e)}}, "")
        else:
            print(f"mcpgate: {e}", file=sys.stderr)
        return EXIT_INVALID


def _check(args: argparse.Namespace) -> int:
    policy = _load(args, args.files)
    if isinstance(policy, int):
        return policy
    findings: list[Finding] = lint_policy(policy)
    tools: list[dict[str, Any]] | None = None
    if args.against:
        try:
            tools = fetch_tools(args.against, headers=_headers(args.header), timeout=args.timeout)
        except McpgateError as e:
            print(f"mcpgate: {e}", file=sys.stderr)
            return EXIT_ERROR
        findings += check_against_tools(policy, tools)
    errors = [f for f in findings if f.severity == "error"]
    summary = (f"ok: {len(policy.rules)} rules from {len(policy.files)} file(s), revision {policy.revision}"
               if not errors else f"{len(errors)} error(s) in {len(policy.rules)} rules")
    text = "\n".join([*(f.render() for f in findings), summary])
    _emit(args, {"ok": not errors, "revision": policy.revision, "rules": len(policy.rules),
                 "files": list(policy.files), "tools": None if tools is None else len(tools),
                 "findings": [f.to_dict() for f in findings]}, text)
    return EXIT_INVALID if errors else EXIT_OK


def _test_files(paths: Sequence[str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            out.extend(os.path.join(path, f) for f in sorted(os.listdir(path))
                       if f.endswith((".tests.yaml", ".tests.yml")))
        else:
            out.append(path)
    return out


def _test(args: argparse.Namespace) -> int:
    try:
        docs = [load_tests(f) for f in _test_files(args.tests)]
    except ConfigError as e:
        print(f"mcpgate: {e}", file=sys.stderr)
        return EXIT_INVALID
    if not docs:
        print("mcpgate: no test files found", file=sys.stderr)
        return EXIT_INVALID
    reports: list[TestReport] = []
    if args.files:
        policy = _load(args, args.files)
        if isinstance(policy, int):
            return policy
        reports.append(run_tests(policy, docs))
    else:
        for doc in docs:
            policy = _load(args, policy_files_for(doc))
            if isinstance(policy, int):
                return policy
            reports.append(run_tests(policy, [doc]))
    merged = TestReport(tuple(r for rep in reports for r in rep.results),
                        tuple(dict.fromkeys(i for rep in reports for i in rep.unexercised)))
    _emit(args, merged.to_dict(), merged.render())
    return EXIT_OK if merged.ok else EXIT_ERROR


def _explain(args: argparse.Namespace) -> int:
    policy = _load(args, args.files)
    if isinstance(policy, int):
        return policy
    try:
        raw = json.loads(args.principal) if args.principal.lstrip().startswith("{") else args.principal
        principal = principal_from(raw)
        arguments = json.loads(args.args) if args.args is not None else None
    except (ValueError, KeyError, TypeError) as e:
        print(f"mcpgate: invalid --principal or --args: {e}", file=sys.stderr)
        return EXIT_INVALID
    if args.tool is not None:
        method, target = "tools/call", args.tool
    elif args.prompt is not None:
        method, target = "prompts/get", args.prompt
    elif args.resource is not None:
        method, target = "resources/read", args.resource
    else:
        method, target = args.method, args.target
    result = explain(policy, principal, method, target, arguments)
    _emit(args, result.to_dict(), result.render())
    return EXIT_OK if result.decision.allowed else EXIT_DENIED


def _schema(args: argparse.Namespace) -> int:
    name = "policy.tests.schema.json" if args.tests else "policy.schema.json"
    print(json.dumps(load_package_schema(name), indent=2))
    return EXIT_OK


def _headers(raw: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in raw:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"invalid --header `{h}`: expected `NAME: VALUE`")
        out[name.strip()] = value.strip()
    return out


def fetch_tools(url: str, *, headers: dict[str, str] | None = None,
                timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every tool a streamable-HTTP MCP server lists (all pages), via initialize → tools/list."""
    base = {"accept": "application/json, text/event-stream", "content-type": "application/json",
            **(headers or {})}
    try:
        with httpx.Client(timeout=timeout, headers=base) as client:
            init = _rpc(client, url, 1, "initialize", {
                "protocolVersion": _CLIENT_PROTOCOL, "capabilities": {},
                "clientInfo": {"name": "mcpgate-policy-check", "version": "1"}})
            session = init.headers.get("mcp-session-id")
            result = _result(init, 1)
            extra = {"mcp-protocol-version": str(result.get("protocolVersion", _CLIENT_PROTOCOL))}
            if session:
                extra["mcp-session-id"] = session
            client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=extra)
            tools: list[dict[str, Any]] = []
            cursor: str | None = None
            for page in range(1000):
                params = {"cursor": cursor} if cursor else {}
                res = _result(_rpc(client, url, 2 + page, "tools/list", params, headers=extra), 2 + page)
                tools.extend(t for t in res.get("tools", []) if isinstance(t, dict))
                cursor = res.get("nextCursor")
                if not cursor:
                    break
            if session:
                client.delete(url, headers=extra)
            return tools
    except httpx.HTTPError as e:
        raise UpstreamUnavailable(f"cannot list tools from `{url}`: {e}") from None


def _rpc(client: httpx.Client, url: str, rid: int, method: str, params: dict[str, Any], *,
         headers: dict[str, str] | None = None) -> httpx.Response:
    resp = client.post(url, json={"jsonrpc": "2.0", "id": rid, "method": method, "params": params},
                       headers=headers)
    if resp.status_code != 200:
        raise UpstreamProtocolError(f"`{method}` to `{url}` answered HTTP {resp.status_code}")
    return resp


def _result(resp: httpx.Response, rid: int) -> dict[str, Any]:
    messages: list[Any] = []
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        for event in resp.text.replace("\r\n", "\n").replace("\r", "\n").split("\n\n"):
            data = "\n".join(line[5:].lstrip(" ") if line.startswith("data:") else ""
                             for line in event.split("\n") if line.startswith("data:"))
            if data:
                messages.append(json.loads(data))
    else:
        messages.append(resp.json())
    for msg in messages:
        if isinstance(msg, dict) and msg.get("id") == rid:
            if "error" in msg:
                error = msg["error"]
                detail = error.get("message", error) if isinstance(error, dict) else error
                raise UpstreamProtocolError(f"server answered an error: {detail}")
            result = msg.get("result")
            if isinstance(result, dict):
                return result
    raise UpstreamProtocolError("server sent no result")
