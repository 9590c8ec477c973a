"""Write a benchmark's latest results into its own section of docs/benchmarks.md.

Each benchmark owns the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``,
so running one never erases another's results.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nLatest results of the scripts in `benchmarks/`; each section is rewritten by its script.\n"


def machine() -> str:
    """One line naming the machine the numbers were measured on."""
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, Python "
            f"{platform.python_version()}, no GPU used")


def update_section(name: str, body: str, doc: Path = DOC) -> Path:
    """Replace (or append) section ``name`` of ``doc`` with ``body``, stamped with date, machine, command."""
    stamp = (f"_Measured {_dt.date.today().isoformat()} on {machine()}._  \n"
             f"_Command: `python {shlex.join(sys.argv)}`_\n\n")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{stamp}{body.rstrip()}\n{end}"
    text = doc.read_text() if doc.exists() else HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = doc.with_suffix(".md.tmp")
    doc.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text)
    os.replace(tmp, doc)
    return doc
