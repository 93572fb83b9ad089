"""load_config: defaults < file < env < flags, and every error names where the bad value came from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mcpgate.config import GatewayConfig, Limits, Timeouts, UpstreamConfig, check_config, load_config
from mcpgate.errors import ConfigError

UP = "http://127.0.0.1:8000/mcp"


def write(tmp_path: Path, text: str, name: str = "mcpgate.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def fail(file: str | None = None, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(file=file, env=env or {}, overrides={})
    return info.value


def test_defaults_with_only_an_upstream() -> None:
    c = load_config(file=None, env={"MCPGATE_UPSTREAM": UP}, overrides={})
    assert (c.listen_host, c.listen_port) == ("127.0.0.1", 4180)
    assert (c.admin_host, c.admin_port) == ("127.0.0.1", 9180)
    assert c.upstream == UpstreamConfig(UP)
    assert (c.upstream.host, c.upstream.port, c.upstream.path, c.upstream.authority) == (
        "127.0.0.1", 8000, "/mcp", "127.0.0.1:8000")
    assert c.public_base_path == "/mcp"
    assert c.allowed_origins == ()
    assert c.limits == Limits()
    assert c.timeouts == Timeouts()
    assert c.limits.max_body_bytes == 16 * 1024 * 1024
    assert c.timeouts.response_s == 300.0
    assert c.timeouts.idle_s == 0
    assert dict(c.policy) == {}
    assert c.source == "env MCPGATE_UPSTREAM"


def test_full_file(tmp_path: Path) -> None:
    f = write(tmp_path, f"""
listen: "[::1]:0"
upstream:
  url: {UP}
  host_header: mcp.internal
  pool_size: 8
admin:
  listen: 127.0.0.1:0
public_base_path: /gateway/mcp
allowed_origins: [https://app.example.com, "null"]
limits:
  max_body_bytes: 1048576
  max_batch: 10
timeouts:
  response_s: 30
  idle_s: 2.5
""")
    c = load_config(file=f, env={}, overrides={})
    assert (c.listen_host, c.listen_port) == ("::1", 0)
    assert c.upstream.host_header == "mcp.internal"
    assert c.upstream.authority == "mcp.internal"
    assert c.upstream.pool_size == 8
    assert (c.admin_host, c.admin_port) == ("127.0.0.1", 0)
    assert c.public_base_path == "/gateway/mcp"
    assert c.allowed_origins == ("https://app.example.com", "null")
    assert c.limits == Limits(max_body_bytes=1048576, max_batch=10)
    assert c.timeouts == Timeouts(response_s=30.0, idle_s=2.5)
    assert isinstance(c.timeouts.response_s, float)
    assert c.source == f"file {f}"
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.listen_port = 1  # type: ignore[misc]


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    f = write(tmp_path, f"listen: 127.0.0.1:1001\nupstream:\n  url: {UP}\nlimits:\n  max_batch: 5\n"
                        "  max_headers: 50\n")
    env = {"MCPGATE_LISTEN": "127.0.0.1:1002", "MCPGATE_LIMITS__MAX_BATCH": "6"}
    c = load_config(file=f, env={}, overrides={})
    assert (c.listen_port, c.limits.max_batch, c.limits.max_headers) == (1001, 5, 50)
    c = load_config(file=f, env=env, overrides={})
    assert (c.listen_port, c.limits.max_batch, c.limits.max_headers) == (1002, 6, 50)
    c = load_config(file=f, env=env, overrides={"listen": "127.0.0.1:1003"},
                    override_labels={"listen": "--listen"})
    assert (c.listen_port, c.limits.max_batch, c.limits.max_headers) == (1003, 6, 50)
    assert c.limits.max_json_depth == Limits().max_json_depth  # untouched: default
    assert c.source == f"file {f}; env MCPGATE_LIMITS__MAX_BATCH,MCPGATE_LISTEN; flags --listen"


def test_config_file_from_env(tmp_path: Path) -> None:
    f = write(tmp_path, f"upstream:\n  url: {UP}\nlisten: 127.0.0.1:1234\n")
    c = load_config(file=None, env={"MCPGATE_CONFIG": f}, overrides={})
    assert c.listen_port == 1234
    other = write(tmp_path, f"upstream:\n  url: {UP}\nlisten: 127.0.0.1:4321\n", "other.yaml")
    assert load_config(file=other, env={"MCPGATE_CONFIG": f}, overrides={}).listen_port == 4321


def test_env_values_are_yaml_scalars_and_strings_stay_strings() -> None:
    env = {
        "MCPGATE_UPSTREAM": UP,
        "MCPGATE_ADMIN__ENABLED": "false",
        "MCPGATE_TIMEOUTS__DRAIN_S": "2.5",
        "MCPGATE_ALLOWED_ORIGINS": "[https://a.example, https://b.example]",
        "MCPGATE_UPSTREAM__HOST_HEADER": "123",  # a string key: not read as a number
    }
    c = load_config(file=None, env=env, overrides={})
    assert c.admin_port is None
    assert c.timeouts.drain_s == 2.5
    assert c.allowed_origins == ("https://a.example", "https://b.example")
    assert c.upstream.host_header == "123"


def test_admin_listen_alias_and_unrelated_env_ignored() -> None:
    env = {"MCPGATE_UPSTREAM": UP, "MCPGATE_ADMIN_LISTEN": "[::1]:9999", "PATH": "/bin", "mcpgate_x": "1"}
    c = load_config(file=None, env=env, overrides={})
    assert (c.admin_host, c.admin_port) == ("::1", 9999)


def test_misspelt_env_var_is_an_error_naming_it() -> None:
    e = fail(env={"MCPGATE_UPSTREAM": UP, "MCPGATE_LIMITS__MAX_BODY_BYTE": "1"})
    assert e.file == "$MCPGATE_LIMITS__MAX_BODY_BYTE"
    assert "unknown environment variable `MCPGATE_LIMITS__MAX_BODY_BYTE`" in e.message
    assert "did you mean `MCPGATE_LIMITS__MAX_BODY_BYTES`?" in e.message
    e = fail(env={"MCPGATE_UPSTREM": UP})
    assert "did you mean `MCPGATE_UPSTREAM`?" in e.message
    e = fail(env={"MCPGATE_limits__max_batch": "1"})
    assert "must be upper case" in e.message
    e = fail(env={"MCPGATE_LIMITS____MAX_BATCH": "1"})
    assert "empty name part" in e.message


def test_bad_env_value_names_the_variable_and_key() -> None:
    e = fail(env={"MCPGATE_UPSTREAM": UP, "MCPGATE_LIMITS__MAX_BATCH": "many"})
    assert str(e) == ("$MCPGATE_LIMITS__MAX_BATCH: expected an integer, got a string (`many`) "
                      "(at `limits.max_batch`)")
    e = fail(env={"MCPGATE_UPSTREAM": UP, "MCPGATE_ADMIN__ENABLED": "yes"})
    assert e.file == "$MCPGATE_ADMIN__ENABLED"
    assert "ambiguous value `yes`" in e.message


def test_same_key_twice_in_env_is_an_error() -> None:
    e = fail(env={"MCPGATE_UPSTREAM": UP, "MCPGATE_UPSTREAM__URL": UP})
    assert "both set the same key" in e.message


def test_bad_flag_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(file=None, env={}, overrides={"upstream.url": UP, "listen": "localhost"},
                    override_labels={"listen": "--listen"})
    assert str(info.value).startswith("--listen: `localhost` is not host:port")
    assert info.value.path == "listen"


def test_unknown_key_in_file(tmp_path: Path) -> None:
    f = write(tmp_path, f"listn: 127.0.0.1:4180\nupstream:\n  url: {UP}\n")
    e = fail(f)
    assert (e.file, e.line, e.path) == (f, 1, "listn")
    assert "unknown key `listn` (did you mean `listen`?)" in e.message


def test_unknown_nested_key_in_file(tmp_path: Path) -> None:
    f = write(tmp_path, f"upstream:\n  url: {UP}\ntimeouts:\n  connect_s: 1\n  respnse_s: 2\n")
    e = fail(f)
    assert (e.file, e.line, e.path) == (f, 5, "timeouts.respnse_s")
    assert "did you mean `response_s`?" in e.message


def test_wrong_type_in_file(tmp_path: Path) -> None:
    f = write(tmp_path, f"upstream:\n  url: {UP}\nlimits:\n  max_body_bytes: 16MB\n")
    e = fail(f)
    assert (e.file, e.line, e.path) == (f, 4, "limits.max_body_bytes")
    assert "expected an integer, got a string (`16MB`)" in e.message


def test_bool_is_not_an_integer(tmp_path: Path) -> None:
    f = write(tmp_path, f"upstream:\n  url: {UP}\nlimits:\n  max_batch: true\n")
    assert "expected an integer, got a boolean" in fail(f).message


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("4180", "is not host:port"),
        ("127.0.0.1:99999", "out of range"),
        ("::1:4180", "IPv6 addresses need brackets: `[::1]:4180`"),
        (":4180", "has no host"),
        ("[fe80::zz]:1", "is not an IPv6 address"),
        ("bad_host:1", "not a valid listen host"),
    ],
)
def test_bad_listen_address(tmp_path: Path, listen: str, message: str) -> None:
    f = write(tmp_path, f"upstream:\n  url: {UP}\n\nlisten: \"{listen}\"\n")
    e = fail(f)
    assert (e.file, e.line, e.path) == (f, 4, "listen")
    assert message in e.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://127.0.0.1:8000/mcp", "https upstreams are not supported yet"),
        ("http://127.0.0.1:8000", "has no path"),
        ("ftp://127.0.0.1/mcp", "must start with `http://`"),
        ("http://user:pw@127.0.0.1/mcp", "credentials"),
        ("http://127.0.0.1/mcp?x=1", "query string"),
        ("http:///mcp", "has no host"),
        ("http://127.0.0.1:70000/mcp", "invalid port"),
    ],
)
def test_bad_upstream_url(tmp_path: Path, url: str, message: str) -> None:
    f = write(tmp_path, f"listen: 127.0.0.1:1\nupstream:\n  url: \"{url}\"\n")
    e = fail(f)
    assert (e.file, e.line, e.path) == (f, 3, "upstream.url")
    assert message in e.message


def test_ipv6_upstream() -> None:
    c = load_config(file=None, env={"MCPGATE_UPSTREAM": "http://[::1]:8000/mcp"}, overrides={})
    assert (c.upstream.host, c.upstream.port, c.upstream.authority) == ("::1", 8000, "[::1]:8000")
    c = load_config(file=None, env={"MCPGATE_UPSTREAM": "http://mcp.internal/"}, overrides={})
    assert (c.upstream.port, c.upstream.path, c.upstream.authority) == (80, "/", "mcp.internal")


@pytest.mark.parametrize(
    ("origin", "message"),
    [("https://app.example.com/", "trailing slash"), ("app.example.com", "must look like"),
     ("https://App.example.com", "lowercase")],
)
def test_bad_origin(tmp_path: Path, origin: str, message: str) -> None:
    f = write(tmp_path, f"upstream:\n  url: {UP}\nallowed_origins:\n  - https://ok.example\n  - {origin}\n")
    e = fail(f)
    assert (e.line, e.path) == (5, "allowed_origins[1]")
    assert message in e.message


def test_missing_upstream_is_an_error() -> None:
    e = fail()
    assert "no upstream" in e.message
    assert "MCPGATE_UPSTREAM" in e.message


def test_admin_on_same_address_as_listen(tmp_path: Path) -> None:
    f = write(tmp_path, f"upstream:\n  url: {UP}\nlisten: 127.0.0.1:7000\nadmin:\n  listen: 127.0.0.1:7000\n")
    e = fail(f)
    assert (e.line, e.path) == (5, "admin.listen")


def test_file_must_be_a_mapping(tmp_path: Path) -> None:
    e = fail(write(tmp_path, "- a\n"))
    assert e.line == 1
    assert "must be a mapping" in e.message


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    c = load_config(file=write(tmp_path, ""), env={}, overrides={"upstream.url": UP})
    assert c.listen_port == 4180


def test_missing_file() -> None:
    e = fail("/nonexistent/mcpgate.yaml")
    assert e.file == "/nonexistent/mcpgate.yaml"
    assert "cannot read file" in e.message


def test_origin_locates_values_for_section_owners(tmp_path: Path) -> None:
    f = write(tmp_path, f"upstream:\n  url: {UP}\nlimits:\n  max_batch: 3\n")
    c = load_config(file=f, env={"MCPGATE_LISTEN": "127.0.0.1:1"}, overrides={})
    assert c.origin.locate(["limits", "max_batch"]) == (f, 4)
    assert c.origin.locate(["listen"]) == ("$MCPGATE_LISTEN", None)
    e = c.origin.error(["limits", "max_batch"], "too small")
    assert str(e) == f"{f}:4: too small (at `limits.max_batch`)"


def test_file_document_is_not_mutated_by_merge(tmp_path: Path) -> None:
    f = write(tmp_path, f"upstream:\n  url: {UP}\n")
    c = load_config(file=f, env={"MCPGATE_UPSTREAM__POOL_SIZE": "3"}, overrides={})
    assert c.upstream.pool_size == 3
    assert c.origin.doc is not None
    assert c.origin.doc.value == {"upstream": {"url": UP}}


def test_check_config_tolerates_missing_upstream_only(tmp_path: Path) -> None:
    assert check_config(file=write(tmp_path, "listen: 127.0.0.1:1\n"), env={}) is None
    c = check_config(file=write(tmp_path, f"upstream:\n  url: {UP}\n", "b.yaml"), env={})
    assert isinstance(c, GatewayConfig)
    with pytest.raises(ConfigError, match="is not host:port"):
        check_config(file=write(tmp_path, "listen: nope\n", "c.yaml"), env={})


def test_direct_construction_derives_upstream_parts() -> None:
    c = GatewayConfig("127.0.0.1", 0, UpstreamConfig("http://localhost:9000/x/mcp", host_header="h:1"))
    assert c.public_base_path == "/x/mcp"
    assert (c.upstream.host, c.upstream.port, c.upstream.authority) == ("localhost", 9000, "h:1")
    with pytest.raises(ConfigError, match="https upstreams"):
        UpstreamConfig("https://x/mcp")
