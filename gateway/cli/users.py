"""``gateway users``: the web console's users (roles lesetilgang and drift), kept in the store.

Passwords are asked for at the prompt (hidden, twice) or read from standard input with --password-stdin,
never taken as an option, so they do not end up in the shell's history or the process list."""

from __future__ import annotations

import sys

import click

from gateway.cli import context
from gateway.cli.output import emit
from gateway.console.auth import WeakPassword, hash_password
from gateway.store import SqlStore
from gateway.store.users import ROLES, UserError, UserStore


def _open() -> tuple[SqlStore, UserStore]:
    store = context.store(create=True)
    return store, UserStore(store.db)


def _audit(store: SqlStore, action: str, username: str, reason: str) -> None:
    """User administration is in the same audit trail as replays: who gave whom access, and when."""
    store.audit(context.operator(context.settings()), action, username.strip().lower(), reason)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def _hash(password: str) -> str:
    try:
        return hash_password(password)
    except WeakPassword as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def users() -> None:
    """Users of the web console ('gateway console'): add, list, change password, disable."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="lesetilgang: may look; drift: may also replay (and later re-route and import).")
@click.option("--name", "display_name", default="", help="Full name shown in the console.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
def users_add(username: str, role: str, display_name: str, password_stdin: bool) -> None:
    """Add a user."""
    store, accounts = _open()
    try:
        user = accounts.add(username, display_name, role, _hash(_password(password_stdin)))
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    _audit(store, "user-add", user.username, f"role {role}")
    click.echo(f"added {user.username} ({user.role})")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
def users_passwd(username: str, password_stdin: bool) -> None:
    """Set a new password (also lifts a lockout)."""
    store, accounts = _open()
    try:
        accounts.set_password(username, _hash(_password(password_stdin)))
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    _audit(store, "user-passwd", username, "new password")
    click.echo(f"new password for {username.lower()}")


@users.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Disable a user: signed out at the next request, cannot sign in again."""
    store, accounts = _open()
    try:
        accounts.set_active(username, False)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    _audit(store, "user-disable", username, "disabled")
    click.echo(f"disabled {username.lower()}")


@users.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Enable a disabled user again."""
    store, accounts = _open()
    try:
        accounts.set_active(username, True)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    _audit(store, "user-enable", username, "enabled")
    click.echo(f"enabled {username.lower()}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
def users_list(as_json: bool) -> None:
    """The users, their roles and when they last signed in (never their hashes)."""
    rows = [{"username": u.username, "name": u.display_name, "role": u.role, "active": u.active,
             "last_sign_in_at": u.last_sign_in_at, "locked_until": u.locked_until} for u in _open()[1].list()]
    emit(rows, ["username", "name", "role", "active", "last_sign_in_at", "locked_until"], as_json)
