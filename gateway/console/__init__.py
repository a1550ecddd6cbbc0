"""The operations console on the web (issue 16): Oversikt, Søk, Detalj, Handlinger and Revisjon over the
gateway's store, with sign-in and roles. ``app.create_app`` builds it; ``gateway console`` serves it."""
