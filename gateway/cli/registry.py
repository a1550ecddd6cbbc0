"""The contact-point registry kept in the store: import it, and look parties, kommuner and GP periods up."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from gateway.cli import checks, context
from gateway.domain.registry import Party, RegisterError, address_of
from gateway.store.registry import StoreRegister, import_registry


@click.group()
def registry() -> None:
    """The contact-point registry in the store (used when GATEWAY_REGISTRY=store)."""


@registry.command("import")
@click.option("--parties", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Registry JSON file (parties; the format of GATEWAY_REGISTRY).")
@click.option("--gp", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="GP register CSV: fnr,gp_herid,valid_from,valid_to,relation.")
@click.option("--force", is_flag=True,
              help="Allow an import that removes more than GATEWAY_REGISTRY_MAX_REMOVE_SHARE of what is there.")
@click.option("--reason", callback=checks.reason, help="Why (audit trail); default: 'registry import'.")
@click.option("--operator", callback=checks.operator, help="Your name beside your OS login in the audit trail.")
def registry_import(parties: Path | None, gp: Path | None, force: bool, reason: str | None,
                    operator: str | None) -> None:
    """Replace the registry in the store, atomically: both files in one transaction, so a broken file (or an
    import that would remove too much) changes nothing, and the error names the file and line. A running
    gateway with GATEWAY_REGISTRY=store switches to it within GATEWAY_RELOAD_SECONDS (its log says
    ``reload.switched``). Audited, with the outcome."""
    if parties is None and gp is None:
        raise click.UsageError("give --parties, --gp or both")
    settings = context.settings()
    store = context.store(settings, create=True)
    who, why = context.operator(settings, operator), reason or "registry import"
    what = " + ".join(str(p.name) for p in (parties, gp) if p is not None)
    estimate = 0
    if gp is not None:
        with gp.open("rb") as f:
            sample = f.read(65536)
        estimate = int(gp.stat().st_size * sample.count(b"\n") / max(1, len(sample)))
    try:
        with click.progressbar(length=max(estimate, 1), label="importing", file=sys.stderr, show_pos=True) as bar:
            n_parties, n_gp = import_registry(store.db, parties=parties, gp=gp, progress=bar.update, force=force,
                                              max_remove_share=settings.registry_max_remove_share)
            bar.update(estimate)
    except RegisterError as exc:
        store.audit(who, "registry-import", what, why, None, outcome="failed: nothing changed")
        raise click.ClickException(f"nothing was changed: {exc}") from exc
    except OSError as exc:
        store.audit(who, "registry-import", what, why, None, outcome="failed: nothing changed")
        raise click.ClickException(f"nothing was changed: {exc.filename}: {exc.strerror}") from exc
    store.audit(who, "registry-import", what, why, f"{n_parties} parties, {n_gp} GP rows", outcome="done")
    if parties is not None:
        click.echo(f"parties: {n_parties} imported from {parties}")
    if gp is not None:
        click.echo(f"GP register: {n_gp} rows imported from {gp}")


def _register_from_store() -> StoreRegister:
    return StoreRegister(context.store().db)


def _party_line(p: Party) -> str:
    extra = ", ".join(filter(None, (p.service_type, p.kommunenummer and f"kommune {p.kommunenummer}",
                                    "formats " + "/".join(p.formats) if p.formats else None,
                                    None if p.active else "INACTIVE")))
    return f"{p.herid:<9} {p.kind:<12} {p.name}" + (f"  ({extra})" if extra else "")


@registry.command("show")
@click.argument("herid", type=click.IntRange(1, 999_999_999))
def registry_show(herid: int) -> None:
    """One communication party, its address and what lies under it."""
    register = _register_from_store()
    party = register.party(herid)
    if party is None:
        raise click.ClickException(f"HER-id {herid} is not in the registry")
    click.echo(_party_line(party))
    address = address_of(register, herid)
    if address is not None:
        click.echo(f"address: {address.organisation.name} ({address.organisation.herid})"
                   + (f" / {address.unit.name} ({address.unit.herid})" if address.unit else ""))
    _echo_children(register, herid)


def _echo_children(register: StoreRegister, herid: int) -> None:
    for child in sorted((p for p in register.parties.values() if p.parent_herid == herid), key=lambda p: p.herid):
        click.echo("  " + _party_line(child))


@registry.command("kommune")
@click.argument("kommunenummer", callback=checks.kommunenummer)
def registry_kommune(kommunenummer: str) -> None:
    """A kommune and its services (forvaltningsenhet, koordinerende enhet, kreftkoordinator, …)."""
    register = _register_from_store()
    kommune = register.kommune(kommunenummer)
    if kommune is None:
        raise click.ClickException(f"kommune {kommunenummer} is not in the registry")
    click.echo(_party_line(kommune))
    _echo_children(register, kommune.herid)


@registry.command("gp")
@click.argument("fnr", callback=checks.fodselsnummer)
def registry_gp(fnr: str) -> None:
    """A patient's GP periods (the number is never logged)."""
    register = _register_from_store()
    rows = register.assignments_for(fnr)
    if not rows:
        raise click.ClickException("no GP register entry for that number")
    today = date.today()
    for a in sorted(rows, key=lambda a: a.valid_from):
        gp = register.party(a.gp_herid)
        now = " (valid today)" if a.valid_from <= today and (a.valid_to is None or today <= a.valid_to) else ""
        click.echo(f"{a.relation:<9} {a.gp_herid:<9} {gp.name if gp else '?':<22} {a.valid_from} – "
                   f"{a.valid_to or ''}{now}")


