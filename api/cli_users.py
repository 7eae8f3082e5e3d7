"""`bidao user add|passwd|token|list|disable`: the people and systems that use the API.

A password is never an argument (it would show in the process list and the shell history):
it is asked for twice at a terminal, or read from the first line of standard input with
`--password-stdin`. An API token is printed once, when it is issued; only its digest is
stored. Each change is written to the audit log as made by `cli:<operating-system user>`.
Refusals are said in Chinese, then English, on stderr, with exit status 2. Words are kept
in api/cli_users_zh.py and api/cli_users_en.py.
"""

from __future__ import annotations

import enum
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from api import cli
from api.cli_users_en import TEXT as EN
from api.cli_users_zh import TEXT as ZH
from gateway.application import USER_ROLES, AccessError, Application, User, UserRole

PASSWORD_MIN = 10
PASSWORD_MAX = 256

user_app = typer.Typer(
    help="Users of the API and their tokens (用户与接口令牌).", no_args_is_help=True
)


class RoleChoice(enum.StrEnum):
    """The roles a user can have (see gateway/domain/access.py for what each may do)."""

    administrator = "administrator"
    township_officer = "township_officer"
    secretary = "secretary"
    grid_worker = "grid_worker"
    installer = "installer"
    family = "family"


assert tuple(RoleChoice) == USER_ROLES
_ROLES: dict[RoleChoice, UserRole] = dict(zip(RoleChoice, USER_ROLES, strict=True))
T = TypeVar("T")


def _both(key: str, **params: object) -> str:
    return f"{ZH[key].format(**params)}\n{EN[key].format(**params)}"


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _words(words: dict[str, str], params: dict[str, str]) -> dict[str, str]:
    """Role and level names in one language for a refusal's message."""
    named = dict(params)
    if "role" in params:
        named["role_name"] = words[f"role_{params['role']}"]
    if "level" in params:
        named["level_name"] = words[f"level_{params['level']}"]
    if "needs" in params:
        named["needs_name"] = words["or"].join(
            words[f"level_{level}"] for level in params["needs"].split(",")
        )
    return named


def _refuse(exc: AccessError) -> typer.Exit:
    key = f"err_{exc.code}"
    params = {"min": str(PASSWORD_MIN), "max": str(PASSWORD_MAX), "detail": str(exc)}
    params.update(exc.params)
    params.setdefault("login", "")
    if key not in ZH:
        key, params["detail"] = "err_bad_input", str(exc)
    cli._complain("错误：" + ZH[key].format(**_words(ZH, params)))
    cli._complain("error: " + EN[key].format(**_words(EN, params)))
    return typer.Exit(cli.EXIT_USAGE)


def _fail(key: str) -> typer.Exit:
    cli._complain("错误：" + ZH[key])
    cli._complain("error: " + EN[key])
    return typer.Exit(cli.EXIT_USAGE)


def read_password(from_stdin: bool) -> str:
    """The new password: standard input's first line, or asked twice without echo."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise _fail("err_no_password_stdin")
        return line
    prompt = f"{ZH['prompt'].format(min=PASSWORD_MIN)} / {EN['prompt'].format(min=PASSWORD_MIN)}: "
    first = getpass.getpass(prompt)
    again = getpass.getpass(f"{ZH['prompt_again']} / {EN['prompt_again']}: ")
    if first != again:
        raise _fail("err_mismatch")
    return first


def _run(config: cli.ConfigOption, work: Callable[[Application], Awaitable[T]]) -> T:
    try:
        return cli._with_store(config, work)
    except AccessError as exc:
        raise _refuse(exc) from None


LoginArg = Annotated[str, typer.Argument(help="the user's login (登录名)")]
StdinOption = Annotated[
    bool,
    typer.Option("--password-stdin", help="read the password from standard input's first line"),
]


def user_add(
    login: LoginArg,
    role: Annotated[RoleChoice, typer.Option("--role", help="what the user may see and do")],
    name: Annotated[str, typer.Option("--name", help="the person's name (姓名)")] = "",
    unit: Annotated[
        list[str] | None,
        typer.Option("--unit", help="grid unit code the user answers for (repeat for more)"),
    ] = None,
    contact: Annotated[
        str | None,
        typer.Option(
            "--contact",
            help="the contact (id, phone or name) the user acts as on tickets; a family"
            " user's family contact",
        ),
    ] = None,
    password_stdin: StdinOption = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="a system that signs in with API tokens only")
    ] = False,
    config: cli.ConfigOption = None,
) -> None:
    """Add a user with a role, their units and the contact they act as (添加用户)."""
    password = None if no_password else read_password(password_stdin)
    role_value = _ROLES[role]
    user = _run(
        config,
        lambda a: a.add_user(login, name, role_value, password, unit or [], contact, _actor()),
    )
    role_key = f"role_{user.role}"
    cli._say(ZH["added"].format(login=user.login, name=user.name, role=ZH[role_key]))
    cli._say(EN["added"].format(login=user.login, name=user.name, role=EN[role_key]))
    if password is None:
        cli._say(_both("added_no_password", login=user.login))


def user_passwd(
    login: LoginArg, password_stdin: StdinOption = False, config: cli.ConfigOption = None
) -> None:
    """Set a user's password; their sign-ins end (修改密码)."""
    password = read_password(password_stdin)
    user = _run(config, lambda a: a.set_user_password(login, password, _actor()))
    cli._say(_both("password_set", login=user.login))


def user_token(
    login: LoginArg,
    name: Annotated[str, typer.Option("--name", help="what the token is for")] = "api",
    days: Annotated[
        float | None, typer.Option("--days", help="valid for this many days (default: always)")
    ] = None,
    config: cli.ConfigOption = None,
) -> None:
    """Issue an API token for a system; it is printed this once only (发放接口令牌)."""
    expires_s = None if days is None else days * 86_400.0
    token, secret = _run(config, lambda a: a.issue_api_token(login, name, expires_s, _actor()))
    cli._say(_both("token_issued", login=login, name=token.name, id=token.id))
    cli._say(secret)
    if token.expires_at is not None:
        cli._say(_both("token_expires", at=cli._local_time(token.expires_at)))


def _line(user: User) -> str:
    state = "state_on" if user.enabled else "state_off"
    return "  ".join(
        [
            str(user.id),
            user.login,
            user.name,
            f"{ZH[f'role_{user.role}']}/{user.role}",
            ",".join(user.units) or "-",
            str(user.contact_id) if user.contact_id is not None else "-",
            f"{ZH[state]}/{EN[state]}",
        ]
    )


def user_list(config: cli.ConfigOption = None) -> None:
    """List users: role, units, linked contact, enabled or not (用户列表)."""
    users = _run(config, lambda a: a.list_users())
    if not users:
        cli._say(_both("none"))
        return
    cli._say(f"{ZH['header']}\n{EN['header']}")
    for user in users:
        cli._say(_line(user))


def user_disable(
    login: LoginArg,
    enable: Annotated[bool, typer.Option("--enable", help="enable the user again")] = False,
    config: cli.ConfigOption = None,
) -> None:
    """Disable a user: sign-ins end, tokens are refused (停用用户); --enable to undo."""
    user = _run(config, lambda a: a.set_user_disabled(login, not enable, _actor()))
    cli._say(_both("enabled" if enable else "disabled", login=user.login))


def register(app: typer.Typer) -> None:
    """Add `bidao user add|passwd|token|list|disable`."""
    user_app.command("add")(user_add)
    user_app.command("passwd")(user_passwd)
    user_app.command("token")(user_token)
    user_app.command("list")(user_list)
    user_app.command("disable")(user_disable)
    app.add_typer(user_app, name="user")
