"""What a file must look like to be read as a churn CSV, checked on its first bytes before any parser
sees it, so a JSON file, a spreadsheet or a binary file is named as such (with what to do instead)
rather than surfacing as a parser error or a list of missing columns. Standard library only: the
training path and the batch function (which has no pandas) both ask it.

    csv_problem(b'{"tenure": 1}')   # 'looks like JSON, not CSV: send JSON to the API (POST /predict); ...'
    csv_problem(b"customerID,tenure,Churn\n")   # None
"""

from __future__ import annotations

import codecs

CSV_SNIFF_BYTES = 64 * 1024
_CSV_HINT = "a CSV needs a header row naming the columns (customerID,gender,...,Churn), then one row per customer"


def csv_problem(head: bytes) -> str | None:
    """What makes the first bytes of a file unreadable as a comma-separated text file, or None."""
    if not head.strip():
        return f"is empty: {_CSV_HINT}"
    if head.startswith(b"PK\x03\x04"):
        return "is a zip archive (an Excel .xlsx file?), not CSV: save or export it as CSV UTF-8"
    if head.startswith(b"\x1f\x8b"):
        return "is gzip-compressed: decompress it first (gunzip FILE)"
    if b"\x00" in head:
        return "is binary (or UTF-16 text), not a CSV text file: save it as CSV UTF-8"
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError as e:
        return f"is not UTF-8 text (byte {e.start} cannot be read): save it as CSV UTF-8"
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        return f"looks like JSON, not CSV: send JSON to the API (POST /predict); {_CSV_HINT}"
    first_line = stripped.splitlines()[0] if stripped else ""
    if "," not in first_line:
        other = next((name for sep, name in ((";", "semicolons"), ("\t", "tabs")) if sep in first_line), None)
        why = f"its columns are separated by {other}" if other else "its first line has no commas"
        return f"is not comma-separated ({why}): {_CSV_HINT}"
    return None
