"""``custodes users ...`` and ``custodes serve``: accounts and the HTTP server.

Passwords are read from standard input (``--password-stdin``), never from an argument
that would land in the shell history or the process list.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from custodes.core.accounts import AccountKind, Role
from custodes.core.errors import CustodesError

if TYPE_CHECKING:
    from custodes.bootstrap import Custodes

# Its own consoles rather than main's: main imports this module to register the commands.
out = Console()
err = Console(stderr=True)

users_app = typer.Typer(help="Manage the accounts that sign in to Custodes.", no_args_is_help=True)

_factory: Callable[[], Custodes] | None = None


def _custodes() -> Custodes:
    assert _factory is not None, "register() sets the factory"
    return _factory()


def _print_json(value: object) -> None:
    """One JSON document on one line: the last line of stdout, for scripts."""
    out.print(orjson.dumps(value).decode(), soft_wrap=True, highlight=False)


NameArg = Annotated[str, typer.Argument(help="The account name (lower case).")]


def _read_password() -> str:
    text = sys.stdin.readline().rstrip("\r\n")
    if not text:
        raise CustodesError("no password on standard input (use --password-stdin and pipe it)")
    return text


@users_app.command("add")
def add(
    name: NameArg,
    role: Annotated[Role, typer.Option("--role", help="The access-policy role.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    service: Annotated[
        bool, typer.Option("--service", help="A service account: API tokens, no password.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the account as JSON.")] = False,
) -> None:
    """Add a person (password from stdin) or a service account."""
    if not service and not password_stdin:
        raise CustodesError("a person's account needs --password-stdin")
    password = None if service else _read_password()
    kind = AccountKind.SERVICE if service else AccountKind.PERSON
    user = _custodes().identity.add_user(name, role, password, kind)
    summary = {"name": user.name, "role": str(user.role), "kind": str(user.kind)}
    if as_json:
        _print_json(summary)
        return
    out.print(f"added {user.name} ({user.role})")
    if kind is AccountKind.PERSON:
        out.print(f"next: custodes users totp-enroll {user.name}  (a second factor is required)")


@users_app.command("totp-enroll")
def totp_enroll(
    name: NameArg,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print secret, URI and recovery codes as JSON.")
    ] = False,
    qr: Annotated[bool, typer.Option("--qr/--no-qr", help="Draw the QR code.")] = True,
) -> None:
    """A new TOTP secret for an authenticator app, and ten recovery codes (shown once)."""
    from custodes.identity.totp import qr_terminal

    enrolment = _custodes().identity.enroll_totp(name)
    if as_json:
        body = {
            "name": name,
            "secret": enrolment.secret,
            "otpauth_uri": enrolment.uri,
            "recovery_codes": list(enrolment.recovery.codes),
        }
        _print_json(body)
        return
    if qr:
        out.print(qr_terminal(enrolment.uri), highlight=False, markup=False)
    out.print(f"otpauth URI: {enrolment.uri}", soft_wrap=True, highlight=False, markup=False)
    out.print("recovery codes (each works once; keep them offline):")
    for code in enrolment.recovery.codes:
        out.print(f"  {code}", highlight=False)


@users_app.command("set-password")
def set_password(
    name: NameArg,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from standard input.")
    ] = False,
) -> None:
    """Reset a password (an administrator's reset); the account's sessions end."""
    if not password_stdin:
        raise CustodesError("the new password is read from standard input: use --password-stdin")
    _custodes().identity.set_password(name, _read_password())
    out.print(f"password of {name} changed; its sessions are ended")


@users_app.command("set-role")
def set_role(
    name: NameArg,
    role: Annotated[Role, typer.Argument(help="The new access-policy role.")],
) -> None:
    """Change an account's role; its sessions end, so the next sign-in carries the new one."""
    _custodes().identity.set_role(name, role)
    out.print(f"{name} is now {role}; its sessions are ended")


@users_app.command("lock")
def lock(name: NameArg) -> None:
    """Lock an account until an administrator unlocks it; its sessions and tokens end."""
    _custodes().identity.lock(name)
    out.print(f"{name} is locked; its sessions and API tokens are revoked")


@users_app.command("unlock")
def unlock(name: NameArg) -> None:
    """Lift a lock (an administrator's or the one failed sign-ins set)."""
    _custodes().identity.unlock(name)
    out.print(f"{name} is unlocked")


@users_app.command("list")
def list_users(
    as_json: Annotated[bool, typer.Option("--json", help="Print the accounts as JSON.")] = False,
) -> None:
    """Every account, with role, second factor and lock state."""
    custodes = _custodes()
    now = custodes.clock.now()
    rows = [
        {
            "name": u.name,
            "role": str(u.role),
            "kind": str(u.kind),
            "totp": u.totp_enabled,
            "passkeys": len(custodes.identity.store.passkeys_of(u.name)),
            "locked": u.locked_at(now),
            "failed_logins": u.failed_logins,
        }
        for u in custodes.identity.list_users()
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("name", "role", "kind", "totp", "passkeys", "locked", "failed")
    for row in rows:
        table.add_row(
            row["name"],
            row["role"],
            row["kind"],
            "yes" if row["totp"] else "no",
            str(row["passkeys"]),
            "LOCKED" if row["locked"] else "",
            str(row["failed_logins"]),
        )
    out.print(table)


@users_app.command("revoke-sessions")
def revoke_sessions(name: NameArg) -> None:
    """End every session of an account (it signs in again)."""
    count = _custodes().identity.sessions.revoke_all(name)
    out.print(f"{count} session(s) of {name} ended")


@users_app.command("token")
def token(
    name: NameArg,
    scope: Annotated[list[str], typer.Option("--scope", help="A scope (repeatable).")],
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Lifetime.")] = 30,
) -> None:
    """Issue a scoped, expiring API token (printed once; stored only as a digest)."""
    value = _custodes().identity.issue_token(name, tuple(scope), timedelta(days=days))
    out.print(value, highlight=False, markup=False, soft_wrap=True)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Certificate chain (PEM) to serve HTTPS with.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="Its private key (PEM, mode 0600).")
    ] = None,
    self_signed: Annotated[
        bool,
        typer.Option("--self-signed", help="HTTPS with a development certificate made (or "
                     "reused) in the data directory."),
    ] = False,
    allow_plain_http: Annotated[
        bool,
        typer.Option("--allow-plain-http", help="Plain HTTP on a non-loopback address "
                     "(only behind a TLS-terminating proxy)."),
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Server processes (one per core serves most).")
    ] = 1,
) -> None:
    """Serve the API (sign-in, passkeys) with Uvicorn; HTTPS with --tls-cert/--tls-key or
    --self-signed. Plain HTTP is refused beyond loopback unless --allow-plain-http."""
    import uvicorn

    from custodes.api.app import create_app
    from custodes.api.tls import plan_transport, self_signed_pair

    try:
        transport = plan_transport(host, tls_cert=tls_cert, tls_key=tls_key,
                                   self_signed=self_signed, allow_plain_http=allow_plain_http)  # fmt: skip
    except CustodesError as error:  # one line, before anything is opened or created
        err.print(f"error: {error}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    custodes = _custodes()
    if transport.self_signed:
        transport = self_signed_pair(custodes.data_dir, host)
        err.print(f"development certificate (trust it explicitly): {transport.cert_file}",
                  highlight=False, markup=False, soft_wrap=True)  # fmt: skip
    custodes.identity  # noqa: B018 - a wrong setting or a missing server fails here, not later
    custodes.vault  # noqa: B018 - the same for the record store (and its schema is made now, once)
    if workers > 1:
        # Each worker process builds its own application from the same CUSTODES_* settings.
        os.environ["CUSTODES_SERVE_TLS"] = "1" if transport.tls else "0"
        os.environ["CUSTODES_DATA_DIR"] = str(custodes.data_dir)  # --data-dir, for the workers too
        app: object = "custodes.api.app:app_from_environment"
    else:
        app = create_app(custodes, tls=transport.tls)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"Custodes API on {transport.scheme}://{shown}:{port} (passkey page: /auth/passkeys)",
              highlight=False, markup=False, soft_wrap=True)  # fmt: skip
    # No WebSocket routes: ws="none" keeps the deprecated websockets.legacy out.
    uvicorn.run(
        app, host=host, port=port, log_level="info", server_header=False, ws="none",
        ssl_certfile=transport.cert_file, ssl_keyfile=transport.key_file,
        workers=workers if workers > 1 else None, factory=workers > 1,
    )  # fmt: skip


def register(app: typer.Typer, factory: Callable[[], Custodes]) -> None:
    """Add ``users`` and ``serve`` to the application."""
    global _factory
    _factory = factory
    app.add_typer(users_app, name="users")
    app.command("serve")(serve)
