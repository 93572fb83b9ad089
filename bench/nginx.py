"""nginx configurations: the fixed upstream mock (canned JSON-RPC, static SSE) and path N's proxy."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench import payloads

_COMMON = """
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 16000; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  types {{ }}
  default_type application/json;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_buffer_size 64k;
  sendfile on;
  tcp_nodelay on;
{servers}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise RuntimeError("nginx not found: run `make sysdeps`")
    return found


def _q(text: str) -> str:
    if "'" in text or "$" in text.replace("$http_x_rpc_id", ""):
        raise ValueError("canned text must not contain quotes or variables")
    return "'" + text + "'"


@dataclass(frozen=True)
class UpstreamPorts:
    call: int       # POST /mcp -> canned tools/call result (fixed id 1)
    sse_big: int    # POST /mcp -> 64 KiB SSE events from a static file
    sse_small: int  # POST /mcp -> ~200 B SSE events from a static file
    rpc: int        # POST /mcp -> id-echoing initialize/tools/list/tools/call, for the SDK-based peer
    rpc_inner: int


def upstream_conf(prefix: Path, www: Path, ports: UpstreamPorts) -> str:
    rid = "$http_x_rpc_id"
    servers = f"""
  server {{
    listen 127.0.0.1:{ports.call} backlog=4096;
    location = /mcp {{ return 200 {_q(payloads.call_result())}; }}
  }}
  server {{
    listen 127.0.0.1:{ports.sse_big} backlog=4096;
    root {www};
    location = /mcp {{ error_page 405 =200 /big.sse; return 405; }}
    location = /big.sse {{ internal; default_type text/event-stream; }}
  }}
  server {{
    listen 127.0.0.1:{ports.sse_small} backlog=4096;
    root {www};
    location = /mcp {{ error_page 405 =200 /small.sse; return 405; }}
    location = /small.sse {{ internal; default_type text/event-stream; }}
  }}
  # The SDK-based peer sends its own request ids and an initialize handshake, so its upstream must
  # echo ids: the outer server reads the body (proxy_pass), extracts method and id with a map, and
  # hands them as headers to an inner server that returns the canned answer for that method.
  map $request_body $rpc_kind {{
    default other;
    '~"method":"initialize"' init;
    '~"method":"tools/list"' list;
    '~"method":"tools/call"' call;
    '~"method":"notifications/' notify;
  }}
  map $request_body $rpc_id {{
    default null;
    '~"id":(?<num>[0-9]+)' $num;
    '~"id":(?<str>"[^"]*")' $str;
  }}
  upstream rpc_inner {{ server 127.0.0.1:{ports.rpc_inner}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{ports.rpc} backlog=4096;
    location = /mcp {{
      proxy_pass http://rpc_inner;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Rpc-Kind $rpc_kind;
      proxy_set_header X-Rpc-Id $rpc_id;
    }}
  }}
  server {{
    listen 127.0.0.1:{ports.rpc_inner};
    location / {{
      if ($http_x_rpc_kind = notify) {{ return 202; }}
      if ($http_x_rpc_kind = init) {{ return 200 {_q(payloads.INITIALIZE_RESULT.replace("ID", rid))}; }}
      if ($http_x_rpc_kind = list) {{ return 200 {_q(payloads.TOOLS_LIST_RESULT.replace("ID", rid))}; }}
      if ($http_x_rpc_kind = call) {{ return 200 {_q(payloads.call_result(rid))}; }}
      return 200 {_q(payloads.EMPTY_RESULT.replace("ID", rid))};
    }}
  }}
"""
    return _COMMON.format(prefix=prefix, servers=servers)


def proxy_conf(prefix: Path, routes: dict[int, int]) -> str:
    """Path N: one server per listen port, each `proxy_pass` to one upstream port over a keep-alive pool."""
    blocks = []
    for listen, upstream in routes.items():
        blocks.append(f"""
  upstream up_{upstream} {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{listen} backlog=4096;
    location / {{
      proxy_pass http://up_{upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
    }}
  }}""")
    return _COMMON.format(prefix=prefix, servers="".join(blocks))


def write_conf(prefix: Path, text: str) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def argv(prefix: Path, conf: Path) -> list[str]:
    return [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
