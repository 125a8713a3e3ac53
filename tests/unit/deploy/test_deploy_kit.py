"""The deployment kit (``deploy/``, ``docs/deploy.md``) names only what exists: every
``vidgate`` command and option it runs is one the CLI has, and every ``VIDGATE_*``
setting it sets is one vidgate reads. The compose file has the services the guide
promises, and the Dockerfile is multi-stage, locked and non-root."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from vidgate.cli import app
from vidgate.config import Settings
from vidgate.providers.registry import PROVIDERS

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
GUIDE = ROOT / "docs" / "deploy.md"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
# Read by the CLI itself rather than Settings: client commands and --debug.
CLI_VARIABLES = {"VIDGATE_API_KEY", "VIDGATE_BASE_URL", "VIDGATE_DEBUG"}
SETTING = re.compile(r"\bVIDGATE_[A-Z0-9_]*[A-Z0-9]\b")


def known_variable(name: str) -> bool:
    if name in CLI_VARIABLES:
        return True
    if name.removeprefix("VIDGATE_").lower() in Settings.model_fields:
        return True
    provider = name.removeprefix("VIDGATE_").split("_", 1)[0].lower()
    return provider in PROVIDERS and name.count("_") >= 2  # VIDGATE_<PROVIDER>_<OPTION>


def check_command(argv: list[str]) -> None:
    """``argv`` (after ``vidgate``) names a real command, with only options it takes."""
    command: Any = typer.main.get_command(app)
    words = list(argv)
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        name = words.pop(0)
        found = command.commands.get(name)
        assert found is not None, f"vidgate has no command {name!r} (in {argv})"
        command = found
    assert not hasattr(command, "commands"), f"{argv} names a group, not a command"
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    flags = {opt for param in command.params if getattr(param, "is_flag", False) for opt in param.opts}
    options |= {"--help", "--debug"}
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    positional = 0
    while words:
        word = words.pop(0)
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            assert name in options, f"vidgate {' '.join(argv)}: no option {name} (has {sorted(options)})"
            if "=" not in word and name not in flags and name not in ("--help", "--debug"):
                assert words, f"{name} needs a value in {argv}"
                words.pop(0)
        else:
            positional += 1
    assert positional <= len(arguments), f"too many arguments in {argv}"


def vidgate_argv(line: str) -> list[str] | None:
    """The words after ``vidgate`` in a command line, or None if it does not run vidgate.

    ``vidgate ...``, ``/opt/vidgate/bin/vidgate ...`` and ``docker compose run [opts]
    SERVICE ...`` (whose entrypoint is vidgate) run it; ``-u vidgate`` does not.
    """
    try:
        words = [w for w in shlex.split(line, comments=True) if w != "\\"]
    except ValueError:
        return None
    for index, word in enumerate(words):
        after_option = index > 0 and words[index - 1] in ("-u", "--user", "-g", "--group")
        if (word == "vidgate" and not after_option) or word.endswith("/bin/vidgate"):
            return words[index + 1 :]
        if word == "run" and words[max(0, index - 1)] == "compose":
            rest = words[index + 1 :]
            while rest and rest[0].startswith("-"):
                rest.pop(0)
            return rest[1:]  # after the service's name
    return None


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def vidgate_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in document["services"].items()
        if str(service.get("image", "")).startswith("vidgate")
    }


def unit_entries(path: Path) -> Iterator[tuple[str, str]]:
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            yield key.strip(), value.strip()


def test_compose_has_the_promised_services() -> None:
    document = compose()
    services = document["services"]
    assert {"postgres", "redis", "minio", "bucket", "migrate", "proxy"} <= set(services)
    ours = vidgate_services(document)
    commands = {name: service["command"] for name, service in ours.items()}
    apis = [n for n, c in commands.items() if c[:2] == ["serve", "--no-worker"]]
    workers = [n for n, c in commands.items() if c == ["worker"]]
    assert len(apis) == 2 and len(workers) == 2, commands
    assert commands["migrate"] == ["migrate"]
    for name in apis + workers:
        waits = ours[name]["depends_on"]
        assert waits["migrate"] == {"condition": "service_completed_successfully"}, name
    proxy_config = (DEPLOY / "nginx.conf").read_text()
    for name in apis:
        assert f"server {name}:8000" in proxy_config
    assert services["proxy"]["depends_on"].keys() == set(apis)
    env = ours["api-1"]["environment"]
    assert env["VIDGATE_DATABASE_URL"].startswith("postgresql://")
    assert env["VIDGATE_STORAGE_URL"].startswith("s3://")
    assert env["VIDGATE_REDIS_URL"].startswith("redis://")
    # One signing secret for every process (signed media URLs work on any replica).
    assert len({str(s["environment"]["VIDGATE_SECRET_KEY"]) for s in ours.values()}) == 1


def test_compose_names_only_real_commands_and_settings() -> None:
    document = compose()
    ours = vidgate_services(document)
    for service in ours.values():
        check_command([str(word) for word in service["command"]])
        for name in service.get("environment", {}):
            if name.startswith("VIDGATE_"):
                assert known_variable(name), name
    api_health = " ".join(ours["api-1"]["healthcheck"]["test"])
    assert "/readyz" in api_health


def test_the_compose_storage_url_is_one_vidgate_accepts(tmp_path: Path) -> None:
    from vidgate.media.backends import storage_from_url

    url = compose()["services"]["api-1"]["environment"]["VIDGATE_STORAGE_URL"]
    storage_from_url(url, data_dir=tmp_path)  # raises on an unknown scheme or parameter


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_units_run_real_commands(unit: Path) -> None:
    entries = dict(unit_entries(unit))
    argv = vidgate_argv(entries["ExecStart"].replace("%i", "8001"))
    assert argv is not None, entries["ExecStart"]
    check_command(argv)
    assert entries["User"] == "vidgate"
    assert entries["EnvironmentFile"] == "/etc/vidgate/vidgate.env"
    if argv[0] != "migrate":
        assert "vidgate-migrate.service" in entries["Requires"]
        assert entries["RestartPreventExitStatus"] == "2"  # a start-up mistake is not retried


def test_units_and_env_files_name_only_real_settings() -> None:
    assert len(UNITS) == 3
    files = [*UNITS, DEPLOY / "systemd" / "vidgate.env", DEPLOY / "vidgate.env.example"]
    for path in files:
        for name in SETTING.findall(path.read_text()):
            assert known_variable(name), f"{path.name}: {name}"
    env = dict(unit_entries(DEPLOY / "systemd" / "vidgate.env"))
    assert env["VIDGATE_DATABASE_URL"].startswith("postgresql://")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line.removesuffix(chr(92)).strip()}".strip()
        if not line.endswith(chr(92)):
            keyword, _, rest = pending.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
    return instructions


def test_dockerfile_is_multi_stage_locked_and_non_root() -> None:
    instructions = dockerfile_instructions()
    stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(stages) >= 2
    final = instructions[stages[-1] :]
    assert any(keyword == "COPY" and rest.startswith("--from=build ") for keyword, rest in final)
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    syncs = [rest for keyword, rest in instructions if keyword == "RUN" and "uv sync" in rest]
    assert syncs and all("--locked" in rest for rest in syncs)
    assert [rest for keyword, rest in final if keyword == "ENTRYPOINT"] == ['["vidgate"]']
    cmd = [rest for keyword, rest in final if keyword == "CMD"]
    assert len(cmd) == 1
    check_command(yaml.safe_load(cmd[0]))


def test_the_guide_names_only_real_commands_options_and_settings() -> None:
    text = GUIDE.read_text()
    for required in ("migrat", "scal", "backup", "rotat", "/readyz", "/metrics"):
        assert required in text.lower(), required
    blocks = re.findall(r"```(?:sh|bash|console|ini)?\n(.*?)```", text, flags=re.S)
    commands = [argv for block in blocks for line in block.splitlines() if (argv := vidgate_argv(line))]
    spans = re.findall(r"`(vidgate [^`]+)`", text)  # commands named in the prose and tables
    commands += [argv for span in spans if (argv := vidgate_argv(span))]
    assert len(commands) >= 8
    for argv in commands:
        check_command([w for w in argv if not w.startswith("$")])
    for name in SETTING.findall(text):
        assert known_variable(name), name


def test_checks_catch_what_does_not_exist() -> None:
    with pytest.raises(AssertionError):
        check_command(["serve", "--workers", "4"])
    with pytest.raises(AssertionError):
        check_command(["deploy"])
    assert not known_variable("VIDGATE_DATABASE")
    assert known_variable("VIDGATE_KLING_SECRET_KEY")


def test_the_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    documented = set(re.findall(r"^\| `(VIDGATE_[A-Z0-9_]+)`", table, flags=re.M))
    missing = {f"VIDGATE_{name.upper()}" for name in Settings.model_fields} - documented
    assert not missing, f"settings missing from the README's Configuration table: {sorted(missing)}"
