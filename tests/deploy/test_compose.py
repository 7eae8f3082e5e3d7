"""compose.yaml against the Compose specification, and every reference in it resolved.

No Docker engine runs here: the schema comes with check-jsonschema (offline), and the
cross-check reads the files the stack would use. Each check is also shown to fail on a copy
of the repository with one thing removed or broken.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from device_sim.cli import build_parser
from gateway.config import load_settings
from gateway.errors import ConfigError
from tests.deploy.compose_check import cross_check, environment, load, schema_problems

REPO = Path(__file__).resolve().parents[2]
SECRETS = {"BIDAO_MQTT_PASSWORD": "gateway-secret"}


def test_compose_file_follows_the_compose_specification() -> None:
    assert schema_problems(REPO / "compose.yaml") == []


def test_every_service_volume_file_and_variable_resolves() -> None:
    assert cross_check(REPO / "compose.yaml", REPO / "README.md") == []


def copy_of_repo(tmp_path: Path) -> Path:
    """The files the stack uses, copied into a folder of their own, to be broken one by one."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("compose.yaml", "Dockerfile", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, copy / name)
    shutil.copytree(REPO / "deploy", copy / "deploy")
    for package in ("firmware_protocol", "gateway", "alerts", "api", "device_sim"):
        (copy / package).symlink_to(REPO / package)
    assert cross_check(copy / "compose.yaml", copy / "README.md") == []
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def remove_service(name: str) -> Callable[[Path], None]:
    def change(copy: Path) -> None:
        text = (copy / "compose.yaml").read_text()
        start = text.index(f"\n  {name}:\n")
        end = text.index("\n\n  ", start + 1) if "\n\n  " in text[start + 1 :] else len(text)
        (copy / "compose.yaml").write_text(text[:start] + text[end:])

    return change


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "service mosquitto removed": (
        remove_service("mosquitto"),
        "bidao depends on mosquitto, which is no service",
    ),
    "mosquitto.conf removed": (
        lambda copy: (copy / "deploy" / "mosquitto.conf").unlink(),
        "mosquitto mounts ./deploy/mosquitto.conf, which does not exist",
    ),
    "entrypoint removed": (
        lambda copy: (copy / "deploy" / "mosquitto-entrypoint.sh").unlink(),
        "mosquitto mounts ./deploy/mosquitto-entrypoint.sh, which does not exist",
    ),
    "Dockerfile removed": (
        lambda copy: (copy / "Dockerfile").unlink(),
        "bidao builds from Dockerfile, which does not exist",
    ),
    "volume declaration removed": (
        lambda copy: edit(copy / "compose.yaml", "  bidao-data:\n  broker-auth:", "  broker-auth:"),
        "bidao uses volume bidao-data, which is not declared",
    ),
    "unknown setting": (
        lambda copy: edit(copy / "compose.yaml", "BIDAO_HTTP__PORT:", "BIDAO_HTTP__PROT:"),
        "bidao sets BIDAO_HTTP__PROT, which is no gateway setting",
    ),
    "credentials written elsewhere": (
        lambda copy: edit(copy / "compose.yaml", "- /broker-auth/acl", "- /data/acl"),
        "broker-auth writes /data/acl; the entrypoint reads /broker-auth",
    ),
    "mosquitto reads another file": (
        lambda copy: edit(
            copy / "deploy" / "mosquitto.conf",
            "acl_file /mosquitto/auth/acl",
            "acl_file /mosquitto/config/acl",
        ),
        "mosquitto.conf's acl_file /mosquitto/config/acl is not a file the entrypoint installs",
    ),
    "anonymous clients let in": (
        lambda copy: edit(
            copy / "deploy" / "mosquitto.conf", "allow_anonymous false", "allow_anonymous true"
        ),
        "mosquitto.conf lets anonymous clients in",
    ),
    "mosquitto unpinned": (
        lambda copy: edit(copy / "compose.yaml", "eclipse-mosquitto:2.0.22", "eclipse-mosquitto:2"),
        "mosquitto image tag '2' is not pinned to a patch version",
    ),
    "gateway as root": (
        lambda copy: edit(copy / "Dockerfile", "USER bidao:bidao", "USER root"),
        "Dockerfile does not end as a non-root USER",
    ),
    "healthcheck removed": (
        lambda copy: edit(
            copy / "compose.yaml",
            '    healthcheck:\n      test: ["CMD-SHELL"',
            '    x-healthcheck:\n      test: ["CMD-SHELL"',
        ),
        "bidao waits for mosquitto's health, which has no healthcheck",
    ),
    "variable undocumented": (
        lambda copy: edit(copy / "README.md", "`TWILIO_FROM`", "the sender"),
        "${TWILIO_FROM} is not documented in the README",
    ),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_cross_check_fails_when_a_reference_breaks(tmp_path: Path, breakage: str) -> None:
    copy = copy_of_repo(tmp_path)
    change, problem = BREAKAGES[breakage]
    change(copy)
    assert problem in cross_check(copy / "compose.yaml", copy / "README.md")


def test_the_schema_check_fails_on_a_broken_file(tmp_path: Path) -> None:
    copy = copy_of_repo(tmp_path)
    edit(
        copy / "compose.yaml",
        "    depends_on:\n      mosquitto:",
        "    depends_om:\n      mosquitto:",
    )
    problems = schema_problems(copy / "compose.yaml")
    assert problems
    assert "depends_om" in problems[0]


def test_the_gateways_environment_loads_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    bidao = load(REPO / "compose.yaml")["services"]["bidao"]
    env = environment(bidao, SECRETS)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.mqtt.host == "mosquitto"
    assert settings.mqtt.username == "bidao-gateway"
    assert settings.mqtt.password.get_secret_value() == "gateway-secret"
    assert settings.mqtt.embedded_broker is False
    assert settings.http.host == "0.0.0.0"
    assert str(settings.database_path) == "/data/bidao.db"
    assert settings.notify.provider == "console"


def test_twilio_without_credentials_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    bidao = load(REPO / "compose.yaml")["services"]["bidao"]
    env = environment(bidao, {**SECRETS, "BIDAO_NOTIFY_PROVIDER": "twilio", "TWILIO_FROM": "+1"})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value) == (
        "setting 'notify': provider 'twilio' needs notify.twilio_account_sid, "
        "notify.twilio_auth_token"
    )


def test_the_broker_password_is_required() -> None:
    bidao = load(REPO / "compose.yaml")["services"]["bidao"]
    with pytest.raises(KeyError, match="set BIDAO_MQTT_PASSWORD"):
        environment(bidao, {})


def test_the_sim_profile_runs_a_simulator_command_that_parses() -> None:
    sim = load(REPO / "compose.yaml")["services"]["sim"]
    assert sim["profiles"] == ["sim"]
    script = sim["command"][0]
    words = shlex.split(script.split("exec bidao sim ", 1)[1].replace("$$", "$"))
    values = {"$SIM_DEVICE_ID": "0011223344556677", "$SIM_DEVICE_KEY": "00" * 16}
    args = build_parser().parse_args([values.get(word, word) for word in words])
    assert args.sim_command == "box"
    assert args.broker_login is True
    assert (args.host, args.port) == ("mosquitto", 1883)
    assert str(args.state_dir) in [t for s, t in (v.split(":") for v in sim["volumes"])]


def test_a_broker_user_needs_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIDAO_MQTT__USERNAME", "bidao-gateway")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value) == (
        "setting 'mqtt': mqtt.username and mqtt.password go together: set both or neither"
    )
