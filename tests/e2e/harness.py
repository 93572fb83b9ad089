"""Which servers the end-to-end tests run, and how to start them and the gateway in front of them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from examples.procs import HOST, Proc, free_port

JS_DIR = Path(__file__).resolve().parent / "js"
PYTHON = sys.executable


@dataclass(frozen=True)
class Backend:
    """How to start one upstream MCP server and where its MCP endpoint lives."""

    key: str
    kind: str  # "python" | "ts"
    transport: str = "streamable-http"  # or "sse" (legacy HTTP+SSE)
    json_response: bool = False
    stateless: bool = False

    @property
    def path(self) -> str:
        return "/sse" if self.transport == "sse" else "/mcp"

    @property
    def stateful(self) -> bool:
        return not self.stateless

    def argv(self, port: int) -> list[str]:
        if self.kind == "ts":
            return ["node", str(JS_DIR / "server.mjs"), str(port)]
        argv = [PYTHON, "-m", "examples.server", "--port", str(port), "--transport", self.transport]
        if self.json_response:
            argv.append("--json-response")
        if self.stateless:
            argv.append("--stateless")
        return argv


BACKENDS = {
    b.key: b
    for b in (
        Backend("py-sse", "python"),
        Backend("py-json", "python", json_response=True),
        Backend("py-stateless", "python", stateless=True),
        Backend("py-legacy-sse", "python", transport="sse"),
        Backend("ts", "ts"),
    )
}


def start_backend(backend: Backend, log_dir: Path) -> Proc:
    port = free_port()
    log = log_dir / f"server-{backend.key}-{port}.log"
    proc = Proc(f"server {backend.key}", backend.argv(port), port, log)
    proc.start().wait_accepting()
    return proc


def gateway_proc(upstream_url: str, log_dir: Path, *, name: str = "gateway",
                 extra_env: dict[str, str] | None = None) -> tuple[Proc, int]:
    """An unstarted `mcpgate serve` in front of `upstream_url`, and the admin port it will listen on."""
    port, admin = free_port(), free_port()
    proc = Proc(
        name,
        [PYTHON, "-m", "mcpgate", "serve", "--upstream", upstream_url, "--listen", f"{HOST}:{port}"],
        port,
        log_dir / f"{name}-{port}.log",
        env={"MCPGATE_ADMIN_LISTEN": f"{HOST}:{admin}", **(extra_env or {})},
    )
    return proc, admin


def wait_gateway(proc: Proc, admin: int, timeout: float = 15.0) -> None:
    """Ready means: the admin plane says healthy and the data-plane port accepts."""
    proc.wait_http_ok(f"http://{HOST}:{admin}/healthz", timeout)
    proc.wait_accepting(timeout)


def run_node(script: str, *args: str, timeout: float = 45.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(JS_DIR / script), *args], cwd=JS_DIR, capture_output=True, text=True, timeout=timeout,
        check=False,
    )


VIAS = ("direct", "gateway")


@dataclass
class Stack:
    """One backend server and (on demand) the gateway in front of it."""

    backend: Backend
    server: Proc
    log_dir: Path
    gateway: Proc | None = None
    gateway_admin: int | None = None
    gateway_error: Exception | None = None

    def url(self, via: str) -> str:
        if via == "direct":
            return f"http://{HOST}:{self.server.port}{self.backend.path}"
        gw = self.ensure_gateway()
        return f"http://{HOST}:{gw.port}{self.backend.path}"

    def ensure_gateway(self) -> Proc:
        if self.gateway_error is not None:  # failed once: fail fast for the rest of the session
            raise RuntimeError(f"gateway failed to start earlier: {self.gateway_error}")
        if self.gateway is None:
            upstream = f"http://{HOST}:{self.server.port}{self.backend.path}"
            self.gateway, self.gateway_admin = gateway_proc(upstream, self.log_dir,
                                                            name=f"gateway-{self.backend.key}")
            try:
                wait_gateway(self.gateway.start(), self.gateway_admin)
            except Exception as e:
                self.gateway_error = e
                raise
        return self.gateway

    def procs(self) -> list[Proc]:
        return [p for p in (self.server, self.gateway) if p is not None]

    def stop(self) -> None:
        for p in (self.gateway, self.server):
            if p is not None:
                p.stop()


@dataclass
class StackPool:
    log_dir: Path
    stacks: dict[str, Stack] = field(default_factory=dict)

    def get(self, key: str) -> Stack:
        if key not in self.stacks:
            backend = BACKENDS[key]
            if backend.kind == "ts":
                require_node()
            self.stacks[key] = Stack(backend, start_backend(backend, self.log_dir), self.log_dir)
        return self.stacks[key]

    def stop(self) -> None:
        for stack in self.stacks.values():
            stack.stop()


def require_node() -> None:
    if shutil.which("node") is None or not (JS_DIR / "node_modules/@modelcontextprotocol/sdk").is_dir():
        raise RuntimeError(
            "the TypeScript SDK is not installed: run `make node` (npm install in tests/e2e/js)")
