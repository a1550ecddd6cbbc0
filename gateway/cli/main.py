"""The ``gateway`` command: what operators, hospital systems and developers run.

This module only assembles the command groups; each lives in its own module (``run`` is the
composition root, ``inspect`` finds and replays, ``registry`` imports the registry, ``dev`` holds the
demo and tools for integrators). The modules are imported only when their command runs (issue 15): the
console, the stand-in and the demo pull in a web stack and lxml, and an operator's ``gateway events list``
should start in a fraction of a second, not wait for them.
"""

from __future__ import annotations

import importlib
import inspect

import click

from gateway import __version__

# command name -> (module, attribute): the one list of commands, imported on use
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("gateway.cli.run", "run"),
    "demo": ("gateway.cli.dev", "demo"),
    "publish": ("gateway.cli.dev", "publish"),
    "validate": ("gateway.cli.dev", "validate"),
    "messages": ("gateway.cli.inspect", "messages"),
    "events": ("gateway.cli.inspect", "events"),
    "replay": ("gateway.cli.inspect", "replay"),
    "reroute": ("gateway.cli.repair", "reroute"),
    "retention": ("gateway.cli.repair", "retention"),
    "audit": ("gateway.cli.inspect", "audit"),
    "route": ("gateway.cli.inspect", "routing_group"),
    "registry": ("gateway.cli.registry", "registry"),
    "forlop": ("gateway.cli.forlop", "forlop"),
    "users": ("gateway.cli.users", "users"),
    "console": ("gateway.cli.console", "console"),
    "inbound": ("gateway.cli.inbound", "inbound"),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when they are looked up, not when ``gateway`` starts."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        command: click.Command = getattr(importlib.import_module(target[0]), target[1])
        return command

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The settings table, built only when help is printed."""
        from gateway.settings import help_table

        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(inspect.cleandoc(f"Configuration (environment variables):\n\n{help_table()}"))


@click.group(cls=LazyGroup, context_settings={"max_content_width": 120})
@click.version_option(__version__, prog_name="gateway")
def main() -> None:
    """Pakkeforløp hjem gateway: kartlegging events in, MsgHead + Dialogmelding 1.1 / PLO 1.6 out."""


if __name__ == "__main__":
    main()
