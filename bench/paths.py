"""The four paths under test (D direct, N nginx, G mcpgate, P Python peer) and the mocks behind them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench import nginx, procs
from bench.procs import Supervisor, free_port, wait_http_ok, wait_port

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".venv-peer"
PEER_REQUIREMENT = "mcp-proxy==0.13.0"
WORKLOADS = ("call", "sse_big", "sse_small", "idle")
# P7: the same gateway with audit and tracing off, and with both on (tracing with sampler 0, as A10
# defines it; nothing is exported). Metrics have no off switch, so they are on in both.
TELEMETRY_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "G_off": ("audit off, tracing off (metrics on: no off switch)", {"audit": {"sink": "off"}}),
    "G_full": ("audit file sink (fsync group) + tracing on (sampler 0) + metrics", {
        "audit": {"sink": "file", "path": "audit/audit.jsonl", "fsync": "group"},
        "telemetry": {"tracing": {"enabled": True, "sampler_ratio": 0.0,
                                  "endpoint": "http://127.0.0.1:9/v1/traces"}}}),
}


@dataclass
class Endpoint:
    """Where one path listens for one workload, and the pid whose tree is the proxy under test."""

    port: int
    pid: int | None = None


@dataclass
class Paths:
    """Ports per path and workload: `ports["G"]["call"]` etc. A workload a path can't serve is absent."""

    endpoints: dict[str, dict[str, Endpoint]] = field(default_factory=dict)
    describe: dict[str, str] = field(default_factory=dict)
    impl: dict[str, str] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)


def ensure_peer() -> Path:
    """The peer runs in its own venv: mcp-proxy needs mcp<2, the project pins mcp==2.3.0."""
    exe = PEER_VENV / "bin" / "mcp-proxy"
    if exe.exists():
        return exe
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True, capture_output=True)
    subprocess.run([str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "-q", PEER_REQUIREMENT],
                   check=True, capture_output=True, timeout=300)
    return exe


class Harness:
    """Starts the mocks on the load core and every path's proxy on the proxy core."""

    def __init__(self, sup: Supervisor, work: Path, www: Path, gate: str, gate_args: list[str]) -> None:
        self.sup = sup
        self.work = work
        self.www = www
        self.gate = gate
        self.gate_args = gate_args
        self.proxy_cpu, self.load_cpu = procs.cores()
        self.up = nginx.UpstreamPorts(*(free_port() for _ in range(5)))
        self.idle_up = free_port()
        self.paths = Paths()

    def start(self) -> Paths:
        self._start_upstreams()
        p = self.paths
        p.endpoints["D"] = {"call": Endpoint(self.up.call), "sse_big": Endpoint(self.up.sse_big),
                            "sse_small": Endpoint(self.up.sse_small)}
        p.describe["D"] = "client -> upstream mock directly"
        p.impl["D"] = "nginx canned upstream"
        # the peer starts slowly (two Python processes and an initialize round trip): start it first
        try:
            peer = self._spawn_peer()
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            p.not_run["P"] = f"mcp-proxy could not be started: {exc}"
        p.endpoints["N"] = self._start_nginx_proxy("N")
        p.describe["N"] = "nginx proxy_pass, 1 worker, proxy_buffering off, keep-alive upstream pool"
        p.impl["N"] = f"nginx {_nginx_version()}"
        if self.gate == "mcpgate":
            p.endpoints.update(self._start_mcpgate())
            p.impl["G"] = "mcpgate (python -m mcpgate serve)"
            p.describe["G"] = ("mcpgate with its defaults: metrics on, audit file sink (fsync group), "
                               "tracing off, no policy (observer)" + (" + " + " ".join(self.gate_args)
                                                                      if self.gate_args else ""))
            for key, (what, _) in TELEMETRY_VARIANTS.items():
                p.impl[key] = f"mcpgate, {what}"
                p.describe[key] = f"mcpgate for P7: {what}"
        else:
            p.endpoints["G"] = self._start_nginx_proxy("G")
            p.impl["G"] = "STAND-IN: nginx proxy_pass (mcpgate not measured)"
            p.describe["G"] = "stand-in for mcpgate, to validate the harness"
        if "P" not in p.not_run:
            try:
                p.endpoints["P"] = {"call": self._await_peer(*peer)}
                p.impl["P"] = f"{PEER_REQUIREMENT} (streamable HTTP server -> stdio -> streamable HTTP client)"
                p.describe["P"] = "Python MCP proxy: SDK server session re-issues each call through an SDK client"
            except RuntimeError as exc:
                p.not_run["P"] = f"mcp-proxy could not be started: {exc}"
        return p

    def _start_upstreams(self) -> None:
        _retry(self._start_upstreams_once)

    def _start_upstreams_once(self) -> None:
        self.up = nginx.UpstreamPorts(*(free_port() for _ in range(5)))
        self.idle_up = free_port()
        prefix = self.work / "nginx-upstream"
        conf = nginx.write_conf(prefix, nginx.upstream_conf(prefix, self.www, self.up))
        proc = self.sup.spawn("upstream-nginx", nginx.argv(prefix, conf), self.load_cpu)
        try:
            for port in (self.up.call, self.up.sse_big, self.up.sse_small, self.up.rpc, self.up.rpc_inner):
                wait_port(port, proc)
            idle = self.sup.spawn("upstream-idle-sse", [sys.executable, "-m", "bench.sessions", "upstream",
                                                        str(self.idle_up)], self.load_cpu, cwd=str(ROOT))
            wait_port(self.idle_up, idle)
        except RuntimeError as exc:
            self.sup.stop("upstream-nginx")
            self.sup.stop("upstream-idle-sse")
            log = _read(prefix / "error.log")
            log += self.sup.log_tail("upstream-idle-sse")
            raise _StartError(f"upstream mocks did not start: {exc}\n{log[-600:]}", "in use" in log) from exc

    def _upstream_for(self, workload: str) -> int:
        return {"call": self.up.call, "sse_big": self.up.sse_big, "sse_small": self.up.sse_small,
                "idle": self.idle_up}[workload]

    def _start_nginx_proxy(self, name: str) -> dict[str, Endpoint]:
        return _retry(lambda: self._start_nginx_proxy_once(name))

    def _start_nginx_proxy_once(self, name: str) -> dict[str, Endpoint]:
        listen = {w: free_port() for w in WORKLOADS}
        prefix = self.work / f"nginx-{name}"
        conf = nginx.write_conf(prefix, nginx.proxy_conf(prefix, {listen[w]: self._upstream_for(w)
                                                                  for w in WORKLOADS}))
        proc = self.sup.spawn(f"proxy-{name}", nginx.argv(prefix, conf), self.proxy_cpu)
        try:
            for port in listen.values():
                wait_port(port, proc)
        except RuntimeError as exc:
            self.sup.stop(f"proxy-{name}")
            log = _read(prefix / "error.log")
            raise _StartError(f"nginx {name} did not start: {exc}\n{log[-600:]}", "in use" in log) from exc
        return {w: Endpoint(port, proc.pid) for w, port in listen.items()}

    def _start_mcpgate(self) -> dict[str, dict[str, Endpoint]]:
        # spawn every instance first, then wait: start-up (imports) is most of the cost
        plan = [("G", w) for w in WORKLOADS] + [(key, "call") for key in TELEMETRY_VARIANTS]
        spawned = {kw: self._spawn_mcpgate(*kw) for kw in plan}
        out: dict[str, dict[str, Endpoint]] = {}
        for (key, w), started in spawned.items():
            try:
                ep = self._await_mcpgate(*started)
            except _StartError as exc:
                if not exc.port_taken:
                    raise
                ep = _retry(lambda kw=(key, w): self._await_mcpgate(*self._spawn_mcpgate(*kw)))  # type: ignore[misc]
            out.setdefault(key, {})[w] = ep
        return out

    def _spawn_mcpgate(self, key: str, w: str) -> tuple[str, subprocess.Popen[bytes], int, int]:
        port, admin = free_port(), free_port()
        name = f"mcpgate-{key}-{w}"
        # each instance in its own directory: defaults with relative paths (the audit file) land there
        home = self.work / name
        home.mkdir(exist_ok=True)
        extra = list(self.gate_args) if key == "G" else []
        if key in TELEMETRY_VARIANTS:
            conf = home / "mcpgate.yaml"
            conf.write_text(json.dumps(TELEMETRY_VARIANTS[key][1]))  # JSON is YAML; no `off` surprises
            extra = ["--config", str(conf)]
        argv = [sys.executable, "-m", "mcpgate", "serve",
                "--upstream", f"http://127.0.0.1:{self._upstream_for(w)}/mcp",
                "--listen", f"127.0.0.1:{port}", *extra]
        proc = self.sup.spawn(name, argv, self.proxy_cpu, cwd=str(home),
                              env={"MCPGATE_ADMIN_LISTEN": f"127.0.0.1:{admin}"})
        return name, proc, port, admin

    def _await_mcpgate(self, name: str, proc: subprocess.Popen[bytes], port: int, admin: int) -> Endpoint:
        try:
            wait_http_ok(f"http://127.0.0.1:{admin}/healthz", proc, timeout=30)
            wait_port(port, proc)
        except RuntimeError as exc:
            tail = self.sup.log_tail(name)
            self.sup.stop(name)
            raise _StartError(f"mcpgate did not start: {exc}\n{tail}", "already in use" in tail) from exc
        return Endpoint(port, proc.pid)

    def _spawn_peer(self) -> tuple[subprocess.Popen[bytes], int]:
        exe = ensure_peer()
        port = free_port()
        inner = [str(exe), "--log-level", "WARNING", "--transport", "streamablehttp",
                 f"http://127.0.0.1:{self.up.rpc}/mcp"]
        # the inner process inherits the taskset affinity: both halves of the peer share the proxy core
        proc = self.sup.spawn("peer-mcp-proxy", [str(exe), "--host", "127.0.0.1", "--port", str(port),
                                                 "--stateless", "--log-level", "WARNING", "--", *inner],
                              self.proxy_cpu)
        return proc, port

    def _await_peer(self, proc: subprocess.Popen[bytes], port: int) -> Endpoint:
        try:
            wait_port(port, proc, timeout=30)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.sup.log_tail('peer-mcp-proxy')}") from exc
        return Endpoint(port, proc.pid)


class _StartError(RuntimeError):
    def __init__(self, message: str, port_taken: bool) -> None:
        super().__init__(message)
        self.port_taken = port_taken


T = TypeVar("T")


def _retry(start: Callable[[], T], attempts: int = 3) -> T:
    """Ports come from bind(0) and are released before the child binds them: on a busy machine another
    process can take one in between, so a start that failed on a taken port is retried on fresh ports."""
    for attempt in range(attempts):
        try:
            return start()
        except _StartError as exc:
            if not exc.port_taken or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _nginx_version() -> str:
    out = subprocess.run([nginx.nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    return out.stderr.strip().split("/")[-1]
