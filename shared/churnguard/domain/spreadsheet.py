"""Cells that a spreadsheet will show as text, never run as a formula (CSV injection).

A customer id or a category value that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is read by Excel, LibreOffice and Google Sheets as a formula (``=HYPERLINK(...)``,
``=cmd|...``). OWASP's advice is to prefix such a cell with a single quote, which makes the
spreadsheet show the text as it is. Numbers we write ourselves are left alone; every text cell
that came from data goes through ``formula_safe``.

    formula_safe("=HYPERLINK(\\"http://x\\")")   # -> "'=HYPERLINK(\\"http://x\\")"
    formula_safe("7590-VHVEG")                   # unchanged
"""

from __future__ import annotations

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(cell: str) -> str:
    """``cell`` as a spreadsheet shows it literally: prefixed with ``'`` when it would start a formula."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell
