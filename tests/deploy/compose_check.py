"""Checks of compose.yaml that need no Docker engine: the schema, and what it refers to.

`schema_problems` runs check-jsonschema with the Compose specification schema it ships
(`vendor.compose-spec`, offline). `cross_check` reads the file as Compose would and lists
every reference that does not resolve: a service named in depends_on, a volume, a bind-mounted
file, the build context and Dockerfile (and what it copies), the paths the broker-auth
service writes, the entrypoint installs and mosquitto.conf reads, the healthchecks, and the
environment variables (each BIDAO_* one must be a gateway setting; each ${VAR} the file
reads must be documented in the README's compose section).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from gateway.config import Settings

MIN_MOSQUITTO = (2, 0, 20)
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?+][^}]*)?\}")
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def load(compose: Path) -> dict[str, Any]:
    """The compose file as Compose reads it (anchors and merge keys resolved)."""
    data = YAML(typ="safe").load(compose.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def schema_problems(compose: Path) -> list[str]:
    """check-jsonschema's complaints against the Compose specification (none: valid)."""
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(compose)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return [] if result.returncode == 0 else [result.stdout + result.stderr]


def _named_volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry of a service (short syntax)."""
    out = []
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        out.append((source, target))
    return out


def _setting_known(name: str) -> bool:
    """Whether a BIDAO_* variable names a gateway setting (as load_settings checks it)."""
    model: Any = Settings
    for part in name.removeprefix("BIDAO_").lower().split("__"):
        if model is None:
            return True
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        model = (
            annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields")
            else None
        )
    return True


def _mosquitto_options(text: str) -> dict[str, str]:
    options = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.strip().partition(" ")
            options[name] = value
    return options


def _dockerfile_problems(root: Path, context: Path, dockerfile: Path) -> list[str]:
    problems: list[str] = []
    text = dockerfile.read_text(encoding="utf-8")
    copied = [
        source
        for line in text.splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    ]
    problems.extend(
        f"Dockerfile copies {source}, which does not exist"
        for source in copied
        if not (context / source).exists()
    )
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        problems.append("Dockerfile does not end as a non-root USER")
    if "/healthz" not in text or "HEALTHCHECK" not in text:
        problems.append("Dockerfile has no HEALTHCHECK on /healthz")
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r"include = \[([^\]]*)\]", pyproject)
    packages = re.findall(r'"([a-z_]+)\*"', found.group(1)) if found else []
    problems.extend(
        f"Dockerfile does not copy the package {package}"
        for package in packages
        if f"COPY {package} " not in text
    )
    return problems


def _auth_path_problems(root: Path, services: dict[str, Any]) -> list[str]:
    """The files broker-auth writes are the ones the entrypoint installs and mosquitto reads."""
    problems = []
    writer = services.get("broker-auth")
    mosquitto = services.get("mosquitto")
    if writer is None or mosquitto is None:
        return ["no broker-auth or mosquitto service to carry the broker's credentials"]
    command = writer.get("command", [])
    args = dict(zip(command[1::2], command[2::2], strict=False)) if command else {}
    if command[:1] != ["broker-credentials"]:
        problems.append("broker-auth does not run `bidao broker-credentials`")
    written = {Path(args.get("--password-file", "")), Path(args.get("--acl-file", ""))}
    shared_in_writer = {t for s, t in _named_volumes(writer)}
    shared = dict(_named_volumes(mosquitto))
    entry = [s for s, t in _named_volumes(mosquitto) if t.endswith("mosquitto-entrypoint.sh")]
    conf = [s for s, t in _named_volumes(mosquitto) if t == "/mosquitto/config/mosquitto.conf"]
    if not entry or not conf:
        return [*problems, "mosquitto mounts no entrypoint or no mosquitto.conf"]
    if not (root / entry[0]).is_file() or not (root / conf[0]).is_file():
        return problems  # reported with the mounts
    script = (root / entry[0]).read_text(encoding="utf-8")
    shared_dir = re.search(r'^SHARED="\$\{[A-Z_]+:-(\S+)\}"$', script, re.MULTILINE)
    auth_dir = re.search(r'^AUTH="\$\{[A-Z_]+:-(\S+)\}"$', script, re.MULTILINE)
    if shared_dir is None or auth_dir is None:
        return [*problems, "the mosquitto entrypoint names no SHARED or AUTH folder"]
    for path in written:
        if str(path.parent) not in shared_in_writer:
            problems.append(f"broker-auth writes {path} outside its mounted volumes")
        if str(path.parent) != shared_dir.group(1):
            problems.append(
                f"broker-auth writes {path}; the entrypoint reads {shared_dir.group(1)}"
            )
    writer_volume = [s for s, t in _named_volumes(writer) if t == shared_dir.group(1)]
    if not writer_volume or shared.get(writer_volume[0]) != shared_dir.group(1):
        problems.append("broker-auth and mosquitto do not share the credentials volume")
    names = {path.name for path in written}
    options = _mosquitto_options((root / conf[0]).read_text(encoding="utf-8"))
    for option in ("password_file", "acl_file"):
        value = Path(options.get(option, ""))
        if str(value.parent) != auth_dir.group(1) or value.name not in names:
            problems.append(
                f"mosquitto.conf's {option} {value} is not a file the entrypoint installs"
            )
    if options.get("allow_anonymous") != "false":
        problems.append("mosquitto.conf lets anonymous clients in")
    return problems


def _service_problems(
    root: Path, name: str, service: dict[str, Any], services: dict[str, Any], declared: set[str]
) -> tuple[list[str], set[str]]:
    """What one service names that does not resolve, and the named volumes it uses."""
    problems: list[str] = []
    used: set[str] = set()
    for target, wait in (service.get("depends_on") or {}).items():
        if target not in services:
            problems.append(f"{name} depends on {target}, which is no service")
        elif wait.get("condition") == "service_healthy" and "healthcheck" not in services[target]:
            problems.append(f"{name} waits for {target}'s health, which has no healthcheck")
    for source, _target in _named_volumes(service):
        if source.startswith(("./", "/")):
            if not (root / source).exists():
                problems.append(f"{name} mounts {source}, which does not exist")
        elif source not in declared:
            problems.append(f"{name} uses volume {source}, which is not declared")
        else:
            used.add(source)
    build = service.get("build")
    if build is None:
        return problems, used
    context = root / build.get("context", ".")
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    if not dockerfile.is_file():
        problems.append(f"{name} builds from {dockerfile.name}, which does not exist")
    else:
        problems.extend(_dockerfile_problems(root, context, dockerfile))
    user = str(service.get("user", ""))
    if not user or user.split(":", maxsplit=1)[0] in {"root", "0"}:
        problems.append(f"{name} does not run as a non-root user")
    problems.extend(
        f"{name} sets {variable}, which is no gateway setting"
        for variable in service.get("environment") or {}
        if variable.startswith("BIDAO_") and not _setting_known(variable)
    )
    return problems, used


def _mosquitto_image_problems(mosquitto: dict[str, Any]) -> list[str]:
    tag = str(mosquitto.get("image", "")).partition(":")[2]
    parts = tag.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return [f"mosquitto image tag {tag!r} is not pinned to a patch version"]
    if tuple(int(p) for p in parts) < MIN_MOSQUITTO:
        return [f"mosquitto {tag} is older than 2.0.20"]
    return []


def cross_check(compose: Path, readme: Path) -> list[str]:
    """Every reference of the compose file that does not resolve, one line each."""
    root = compose.parent
    data = load(compose)
    services: dict[str, Any] = data.get("services") or {}
    declared = set(data.get("volumes") or {})
    problems: list[str] = []
    used: set[str] = set()
    for name, service in services.items():
        found, volumes = _service_problems(root, name, service, services, declared)
        problems.extend(found)
        used |= volumes
    problems.extend(f"volume {v} is declared but never used" for v in sorted(declared - used))
    problems.extend(
        f"{required} has no healthcheck"
        for required in ("mosquitto", "bidao")
        if required in services and "healthcheck" not in services[required]
    )
    bidao = services.get("bidao")
    if bidao is not None:
        port = str(bidao.get("environment", {}).get("BIDAO_HTTP__PORT", "8080"))
        check = " ".join(bidao.get("healthcheck", {}).get("test", []))
        if f"127.0.0.1:{port}/healthz" not in check:
            problems.append(f"bidao's healthcheck does not ask /healthz on port {port}")
    if "mosquitto" in services:
        problems.extend(_mosquitto_image_problems(services["mosquitto"]))
    problems.extend(_auth_path_problems(root, services))
    problems.extend(_variable_problems(compose, readme))
    return problems


def _variable_problems(compose: Path, readme: Path) -> list[str]:
    """Each ${VAR} the compose file reads is documented in the README's compose section."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    start = text.find("## Deploying with compose")
    if start < 0:
        return ["README has no 'Deploying with compose' section"]
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else len(text)]
    variables = sorted(set(VARIABLE.findall(compose.read_text(encoding="utf-8"))))
    return [f"${{{v}}} is not documented in the README" for v in variables if v not in section]


def environment(service: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """A service's environment with ${VAR...} resolved as Compose would, from `values`."""

    def resolve(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            spec = match.group(0)[len(name) + 2 : -1]
            if name in values and values[name] != "":
                return values[name]
            if spec.startswith(":-"):
                return spec[2:]
            if spec.startswith(":?"):
                raise KeyError(f"{name}: {spec[2:]}")
            return ""

        return VARIABLE.sub(one, text)

    return {str(k): resolve(str(v)) for k, v in (service.get("environment") or {}).items()}
