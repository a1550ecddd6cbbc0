"""Oversikt: what the gateway can tell because it sees every event and every receipt.

Status events back to the publishing hospital (``status``), each patient's pathway and the due
windows for the next samhandlingspunkt (``pathway``), coverage of the kommuner's contact points
(``coverage``) and the national WMFG10 indicator (``indicator``).

Everything here is pure: plain dataclasses in, plain dataclasses, dicts and CSV text out. No I/O,
no database and no XML, so the store, the CLI and the console can all use it, and tests can run it
over thousands of generated patients in seconds.
"""
