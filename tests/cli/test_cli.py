"""The CLI: exit codes, one-line errors, the published schema, and `serve` handing its config over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import mcpgate
from mcpgate.cli import COMMAND_MODULES, build_parser, main
from mcpgate.config import GatewayConfig

UP = "http://127.0.0.1:8000/mcp"
REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MCPGATE_")}
    return subprocess.run([sys.executable, "-m", "mcpgate", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, cwd=REPO, timeout=60, check=False)


def test_serve_with_bad_config_exits_3_naming_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"upstream:\n  url: {UP}\nlimits:\n  max_batch: 10\n  max_bach: 5\n")
    result = run_cli("serve", "--config", str(bad))
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == (f"mcpgate: {bad}:5: unknown key `max_bach` (did you mean `max_batch`?) "
                             "(at `limits.max_bach`)\n")


def test_serve_with_bad_env_exits_3(tmp_path: Path) -> None:
    result = run_cli("serve", "--upstream", UP, env={"MCPGATE_TIMEOUTS__IDLE_S": "-1"})
    assert result.returncode == 3
    assert result.stderr == ("mcpgate: $MCPGATE_TIMEOUTS__IDLE_S: must be at least 0, got -1 "
                             "(at `timeouts.idle_s`)\n")


def test_serve_with_bad_flag_value_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--upstream", "https://127.0.0.1:8000/mcp"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("mcpgate: --upstream: https upstreams are not supported yet")
    assert err.endswith("(at `upstream.url`)\n")
    assert err.count("\n") == 1


def test_serve_without_upstream_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 3
    assert "no upstream" in capsys.readouterr().err


def test_usage_errors_exit_3_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--bogus"]) == 3
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert main(["nonsense"]) == 3
    assert main([]) == 3
    assert main(["config"]) == 3


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mcpgate {mcpgate.__version__}"


def test_serve_hands_the_built_config_to_run_gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[GatewayConfig] = []

    def run_gateway(config: GatewayConfig) -> int:
        seen.append(config)
        return 0

    # Stands in for the data plane (tested on its own): this checks only what `serve` passes to it.
    monkeypatch.setattr("mcpgate.gateway.run_gateway", run_gateway)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("listen: 127.0.0.1:1111\nlimits:\n  max_batch: 7\n")
    monkeypatch.setenv("MCPGATE_TIMEOUTS__RESPONSE_S", "12")
    code = main(["serve", "--config", str(cfg), "--upstream", UP, "--listen", "[::1]:0",
                 "--admin-listen", "127.0.0.1:0"])
    assert code == 0
    (config,) = seen
    assert (config.listen_host, config.listen_port) == ("::1", 0)
    assert (config.admin_host, config.admin_port) == ("127.0.0.1", 0)
    assert config.upstream.url == UP
    assert config.limits.max_batch == 7
    assert config.timeouts.response_s == 12.0
    assert config.source == (f"file {cfg}; env MCPGATE_TIMEOUTS__RESPONSE_S; "
                             "flags --upstream,--listen,--admin-listen")
    seen.clear()
    assert main(["serve", "--upstream", UP, "--no-admin"]) == 0
    assert seen[0].admin_port is None


def test_run_gateway_exit_code_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mcpgate.gateway.run_gateway", lambda c: 1)
    assert main(["serve", "--upstream", UP]) == 1


def test_config_schema_is_published_and_valid() -> None:
    result = run_cli("config", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "identity.section.schema" in schema["$defs"]
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"listen": "127.0.0.1:4180", "upstream": {"url": UP}})
    assert not validator.is_valid({"upstream": {"url": UP, "pool_sise": 1}})


def test_config_schema_split(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema", "--split"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["identity"]["$ref"] == "identity.section.schema.json"


def test_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(f"upstream:\n  url: {UP}\n")
    assert main(["config", "check", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: ok (upstream {UP})\n"
    partial = tmp_path / "partial.yaml"
    partial.write_text("listen: 127.0.0.1:4180\n")
    assert main(["config", "check", str(partial)]) == 0
    assert "no upstream set" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: 127.0.0.1:4180\nlisten: 127.0.0.1:4181\n")
    assert main(["config", "check", str(bad)]) == 3
    err = capsys.readouterr().err
    assert err == f"mcpgate: {bad}:2: duplicate key `listen` (first defined on line 1) (at `listen`)\n"


def test_config_check_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("upstream:\n  url: [oops\n")
    assert main(["config", "check", str(bad), "--format", "json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert out["error"]["code"] == "config.invalid"
    assert (out["error"]["file"], out["error"]["line"]) == (str(bad), 3)
    good = tmp_path / "good.yaml"
    good.write_text(f"upstream:\n  url: {UP}\n")
    assert main(["config", "check", str(good), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "file": str(good), "upstream": UP}


def test_config_env_lists_variables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "env"]) == 0
    out = capsys.readouterr().out
    assert "MCPGATE_LIMITS__MAX_BODY_BYTES\tlimits.max_body_bytes" in out
    assert "MCPGATE_UPSTREAM__URL\tupstream.url\t(or MCPGATE_UPSTREAM)" in out


def test_commands_are_registered_by_modules() -> None:
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert choices is not None
    assert {"serve", "config"} <= set(choices)
    assert "mcpgate.cli.serve" in COMMAND_MODULES


def test_error_output_is_one_line_even_for_multiline_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--upstream", UP, "--listen", "a\nb:1"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("mcpgate: --listen: ")
