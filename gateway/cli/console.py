"""``gateway console``: serve the web console with uvicorn, on GATEWAY_CONSOLE_HOST:GATEWAY_CONSOLE_PORT."""

from __future__ import annotations

import click

from gateway.cli import context
from gateway.errors import GatewayError
from gateway.logs import configure, log


@click.command()
@click.option("--host", help="Address to listen on [default: GATEWAY_CONSOLE_HOST]")
@click.option("--port", type=int, help="Port [default: GATEWAY_CONSOLE_PORT]")
def console(host: str | None, port: int | None) -> None:
    """Serve the operations console on the web (sign in with a user from 'gateway users add')."""
    import uvicorn

    from gateway.console.app import create_app
    from gateway.store.users import UserStore

    settings = context.settings()
    configure(settings.log_format)
    store = context.store(settings, create=True, keyed=True)
    try:
        app = create_app(settings, store=store)
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from exc
    if not UserStore(store.db).list():
        click.echo("No console users yet: add one with 'gateway users add NAME --role drift'.", err=True)
    listen_host, listen_port = host or settings.console_host, port or settings.console_port
    log.info("console.listening", url=f"http://{listen_host}:{listen_port}/")
    click.echo(f"Console on http://{listen_host}:{listen_port}/ (Ctrl-C stops it)", err=True)
    # proxy_headers: behind a TLS proxy the client address (for the sign-in limit) and https come from it
    uvicorn.run(app, host=listen_host, port=listen_port, proxy_headers=True, server_header=False,
                log_level="warning")
