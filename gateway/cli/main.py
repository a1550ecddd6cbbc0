"""The ``gateway`` command: what operators, hospital systems and developers run.

This module only assembles the command groups; each lives in its own module (``run`` is the
composition root, ``inspect`` finds and replays, ``registry`` imports the registry, ``dev`` holds the
demo and tools for integrators)."""

from __future__ import annotations

import click

from gateway import __version__
from gateway.cli.console import console
from gateway.cli.dev import demo, publish, validate
from gateway.cli.forlop import forlop
from gateway.cli.inbound import inbound
from gateway.cli.inspect import audit, events, messages, replay, routing_group
from gateway.cli.registry import registry
from gateway.cli.run import run
from gateway.cli.users import users
from gateway.settings import help_table


@click.group(epilog=f"Configuration (environment variables):\n\n{help_table()}",
             context_settings={"max_content_width": 120})
@click.version_option(__version__, prog_name="gateway")
def main() -> None:
    """Pakkeforløp hjem gateway: kartlegging events in, MsgHead + Dialogmelding 1.1 / PLO 1.6 out."""


for command in (run, demo, publish, validate, messages, events, replay, audit, routing_group, registry, forlop,
                users, console, inbound):
    main.add_command(command)


if __name__ == "__main__":
    main()
