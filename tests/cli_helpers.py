"""Helpers shared by the command-line tests (not a test module)."""

from __future__ import annotations

import os
from pathlib import Path

from sim.cli import main


def fails(argv: list[str], capsys, *needles: str) -> str:
    """Run the CLI; assert exit status 2 and one line on stderr holding every needle."""
    code = main(argv)
    out = capsys.readouterr()
    assert code == 2, out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert "Traceback" not in out.err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too) with its bytes: to show it was untouched."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def session_processes(sid: int) -> list[int]:
    """The living (not zombie) processes of session `sid`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if os.getsid(int(entry.name)) == sid and state != "Z":
                pids.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return pids
