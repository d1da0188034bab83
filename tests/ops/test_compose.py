"""docker-compose.yml: valid for Compose (Debian's docker-compose, `config` needs no engine) and
in step with the code: every ceso command it runs parses in the Click tree, every worker is a
Prometheus target, mounted files exist, secrets come from files, services have health checks.

No Docker engine runs here, so the stack itself is not started by any test.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import ipaddress
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from ceso.cli.root import cli
from tests.ops.prom import REPO

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"

#: Commands of services whose program has not landed yet, with the reason. The test fails once
#: the program exists, so that its arguments get checked like the others.
PENDING_COMMANDS: dict[str, str] = {}


def compose(*args: str, file: Path = COMPOSE) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose not found: install Debian's docker-compose (ops/dev/setup.sh does)")
    return subprocess.run(
        [binary, "--project-directory", str(REPO), "-f", str(file), "--env-file", str(ENV_EXAMPLE), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The whole file as Compose resolves it (anchors merged, variables from .env.example), demo included."""
    proc = compose("--profile", "demo", "config")
    assert proc.returncode == 0, proc.stderr
    return dict(yaml.safe_load(proc.stdout))


def test_compose_file_is_valid_with_and_without_the_demo_profile() -> None:
    for extra in ((), ("--profile", "demo")):
        proc = compose(*extra, "config", "--quiet")
        assert proc.returncode == 0, proc.stderr


def test_the_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    data = yaml.safe_load(COMPOSE.read_text())
    data["services"]["redis"]["restrat"] = "always"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(data))
    proc = compose("config", "--quiet", file=broken)
    assert proc.returncode != 0 and "restrat" in proc.stderr


def test_the_stack_has_every_part(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    workers = sorted(s for s in services if s.startswith("worker-"))
    assert workers == ["worker-esxi-a", "worker-esxi-b"]
    for name in ("redis", "postgres", "migrate", "beat", "flower", "cesod", "prometheus", "grafana"):
        assert name in services, name
    assert services["migrate"]["command"] == ["ceso", "db", "upgrade"]
    # The scheduler is `ceso beat` (Celery's own beat knows none of ceso's schedules).
    assert services["beat"]["command"] == ["ceso", "beat"]
    assert [s for s in services if "beat" in services[s].get("command", [])] == ["beat"]
    for sim in ("esxi-sim-a", "esxi-sim-b", "demo-hosts"):
        assert services[sim]["profiles"] == ["demo"], sim
    assert services["esxi-sim-a"]["build"]["context"].endswith("ops/simulator")
    for name, service in services.items():
        if name.startswith("worker-"):
            host = name.removeprefix("worker-")
            assert service["command"][:4] == ["ceso", "worker", "--host", host], name
            assert "depends_on" in service and service["depends_on"]["migrate"]["condition"] == (
                "service_completed_successfully"
            )


def test_long_running_services_have_health_checks_and_restart(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        if name in ("migrate", "demo-hosts"):
            assert service["restart"] == "no", name  # one-shot steps
            continue
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_secrets_come_from_files_and_never_from_the_images(resolved: dict[str, Any]) -> None:
    secrets = resolved["secrets"]
    for name, secret in secrets.items():
        assert Path(secret["file"]).parent == REPO / "secrets", name
    text = COMPOSE.read_text() + ENV_EXAMPLE.read_text()
    assert not re.search(r"(?i)(password|secret)\s*[:=]\s*['\"]?\w{6,}", text.replace("_FILE", "")), (
        "a literal password in docker-compose.yml or .env.example"
    )
    for name, service in resolved["services"].items():
        env = service.get("environment", {})
        mounted = {s["source"] for s in service.get("secrets", [])}
        for key, value in env.items():
            if key.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in mounted, (name, key)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", "secrets/", ".git", ".venv"} <= set(ignored)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "secrets" not in dockerfile.lower().replace("no secret is baked in", "").replace(
        "compose secrets", ""
    )
    for copied in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, flags=re.M):
        assert (REPO / copied).exists(), copied


def test_mounted_files_exist(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith("/"):
                assert Path(source).exists(), (name, source)
        build = service.get("build")
        if build:
            assert (Path(build["context"]) / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_prometheus_scrapes_every_worker_flower_and_cesod(resolved: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO / "ops" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: {t for sc in job["static_configs"] for t in sc["targets"]}
        for job in config["scrape_configs"]
    }
    services = resolved["services"]
    workers = {f"{s}:9810" for s in services if s.startswith("worker-")}
    assert targets["ceso-workers"] == workers
    assert targets["flower"] == {"flower:5555"}
    assert targets["cesod"] == {"cesod:9813"}  # its /metrics, not its JSON-RPC port
    assert services["cesod"]["command"][-2:] == ["--metrics-port", "9813"]
    assert targets["ceso-metrics"] == {"ceso-metrics:9811"}
    for name in ("worker-esxi-a", "ceso-metrics", "cesod"):
        assert services[name]["environment"]["CESO_METRICS__ADDRESS"] == "0.0.0.0"


# -- the commands ---------------------------------------------------------------------------------
def _commands(resolved: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(service, argv) of every program run from the ceso image, including `ceso` calls in `sh -c` scripts."""
    found = []
    for name, service in resolved["services"].items():
        argv = service.get("command")
        if not argv or not service["image"].startswith("ceso:"):
            continue  # other images run their own programs
        argv = [a.replace("$$", "$") for a in argv]
        if argv[0] == "sh" and argv[1] == "-c":
            for segment in re.split(r"\n|\||;|&&", argv[2]):
                words = shlex.split(segment)
                while words and words[0] in ("if", "!", "then", "do", "else"):
                    words = words[1:]
                if words and words[0] == "ceso":
                    found.append((name, words))
        else:
            found.append((name, argv))
    return found


def script_command(program: str) -> click.Command:
    """The Click command behind a console script of pyproject.toml (its entry point, or the
    command of the same name in the entry point's module when the entry point wraps it)."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module_name, _, attr = scripts[program].partition(":")
    module = importlib.import_module(module_name)
    for candidate in (getattr(module, attr), getattr(module, program.replace("-", "_"), None)):
        if isinstance(candidate, click.Command):
            return candidate
    raise AssertionError(f"{program}: no Click command in {module_name}")


def _parse_click(
    command: click.Command, name: str, args: list[str], parent: click.Context | None = None
) -> None:
    """Parse ``args`` like Click would when running them, without running anything."""
    ctx = command.make_context(name, list(args), parent=parent)
    if isinstance(command, click.Group):
        # Click 8.2 keeps the subcommand in _protected_args (8.1: protected_args, now deprecated).
        protected = vars(ctx).get("_protected_args", vars(ctx).get("protected_args", []))
        rest = [*protected, *ctx.args]
        assert rest, f"{ctx.command_path}: no subcommand"
        sub_name, sub, sub_args = command.resolve_command(ctx, rest)
        assert sub is not None and sub_name is not None
        _parse_click(sub, sub_name, sub_args, ctx)


def test_every_ceso_command_in_the_compose_file_exists(resolved: dict[str, Any]) -> None:
    commands = _commands(resolved)
    programs = {argv[0] for _, argv in commands}
    assert programs <= {"ceso", "cesod", "celery"}, programs
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    checked = 0
    for service, argv in commands:
        program, args = argv[0], argv[1:]
        if program == "ceso":
            try:
                _parse_click(cli, "ceso", args)
            except click.ClickException as exc:
                pytest.fail(f"{service}: `{shlex.join(argv)}` does not parse: {exc.format_message()}")
            checked += 1
        elif program in PENDING_COMMANDS:
            assert program not in scripts, (
                f"`{program}` now exists: remove it from PENDING_COMMANDS so {service}'s arguments are checked"
            )
        elif program in scripts:
            _parse_click(script_command(program), program, args)
        elif program == "celery":
            assert args[:2] == ["-A", "workers.app"], service
            assert args[2] == "flower", service
            importlib.import_module("workers.app")
    assert checked >= 5  # migrate, both workers, ceso-metrics, the demo host registration
    # Flower is a Celery subcommand through its entry point.
    celery_commands = {ep.name for ep in importlib.metadata.entry_points(group="celery.commands")}
    assert "flower" in celery_commands


def test_the_command_check_catches_a_wrong_option() -> None:
    with pytest.raises(click.NoSuchOption):
        _parse_click(cli, "ceso", ["worker", "--host", "esxi-a", "--no-such-option"])
    with pytest.raises(click.UsageError):
        _parse_click(cli, "ceso", ["no-such-command"])


def test_cesod_serves_tls_to_this_stack_only(resolved: dict[str, Any]) -> None:
    """Bearer tokens never cross the network in clear text, and only the stack's own network
    (and loopback) may connect: not every Docker network on the machine."""
    cesod = resolved["services"]["cesod"]
    argv = [str(a) for a in cesod["command"]]
    assert "--insecure-http" not in argv
    cert, key = argv[argv.index("--tls-cert") + 1], argv[argv.index("--tls-key") + 1]
    mounted = {s["source"] for s in cesod["secrets"]}
    assert {cert.removeprefix("/run/secrets/"), key.removeprefix("/run/secrets/")} <= mounted
    subnet = resolved["networks"]["default"]["ipam"]["config"][0]["subnet"]
    allowlist = json.loads(cesod["environment"]["CESO_CESOD__ALLOWLIST"])
    assert sorted(allowlist) == sorted(["127.0.0.1/32", "::1/128", subnet])
    assert ipaddress.ip_network(subnet).prefixlen >= 16
    assert "cesod_tls_cert" in ENV_EXAMPLE.read_text() and "cesod_tls_key" in ENV_EXAMPLE.read_text()
