"""English: what `bidao user ...` says to people."""

TEXT: dict[str, str] = {
    "added": "Added user {login} ({name}, {role}).",
    "added_no_password": (
        "No password yet: set one with bidao user passwd {login}, or issue an API token with"
        " bidao user token {login}."
    ),
    "password_set": "New password set for {login}; their earlier sign-ins have ended.",
    "token_issued": (
        "Issued API token '{name}' (id {id}) for {login}. It is shown this once only;"
        " store it safely now:"
    ),
    "token_expires": "Valid until {at}.",
    "disabled": (
        "Disabled user {login}: their sign-ins have ended and their API tokens are refused."
    ),
    "enabled": "Enabled user {login} again.",
    "none": "No users yet. Add one with bidao user add.",
    "header": "id  login  name  role  units  contact  state",
    "state_on": "enabled",
    "state_off": "disabled",
    "prompt": "New password (at least {min} characters)",
    "prompt_again": "Again",
    "err_mismatch": "The two passwords differ.",
    "err_no_password_stdin": "No password on standard input.",
    "err_bad_login": "Login {login} cannot be used: use 2 to 64 letters, digits or . _ @ -.",
    "err_bad_name": "The name cannot be used (too long or empty).",
    "err_login_taken": "Login {login} is taken.",
    "err_no_such_user": "No user {login}. See bidao user list.",
    "err_unit_not_allowed": "A {role_name} has no units: leave out --unit.",
    "err_unit_needed": "A {role_name} needs the unit they answer for: give its code with --unit.",
    "err_one_unit": "A {role_name} answers for exactly one unit.",
    "err_no_such_unit": "No unit has the code {unit}: see the imported units file.",
    "err_wrong_level": "Unit {unit} is a {level_name}; a {role_name} needs a {needs_name}.",
    "level_county": "county",
    "level_township": "township",
    "level_village": "village",
    "level_area": "area",
    "level_group": "group",
    "level_neighbourhood": "neighbourhood",
    "or": " or ",
    "err_bad_contact": "Unsuitable contact: {detail}.",
    "err_too_short": "The password is too short: at least {min} characters.",
    "err_too_long": "The password is too long: at most {max} characters.",
    "err_bad_input": "Bad input: {detail}.",
    "role_administrator": "administrator",
    "role_township_officer": "township officer",
    "role_secretary": "village secretary",
    "role_grid_worker": "grid worker",
    "role_installer": "installer",
    "role_family": "family",
}
