"""Pakkeforløp hjem gateway: kartlegging events in, official MsgHead messages out.

The package follows the path the data walks: kartlegging (event) → routing → message
(msghead, dialogmelding) → validation → store → bus. Each step is a plain function
over the plain data types defined next to its concept; I/O lives in ``store`` and ``bus``.
"""

__version__ = "0.1.0"
