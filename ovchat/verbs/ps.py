"""`ovchat ps`: what running `ovchat serve` processes hold: each model, whether it is loaded,
since when and how long it took (`--json` for every field)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from ..library.held import running_servers
from .cliargs import print_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON list of servers")


def _ago(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return ""
    seconds = max(0, int(dt.datetime.now().timestamp() - ts))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def main(args: argparse.Namespace) -> int:
    servers = running_servers()
    if args.json:
        print(json.dumps(servers, indent=2))
        return 0
    if not servers:
        print("no ovchat server is running")
        return 0
    rows = []
    for s in servers:
        where = f"pid {s.get('pid')}" + (f" {s['url']}" if s.get("url") else "")
        for m in s.get("models") or []:
            load = m.get("load_seconds")
            rows.append(
                [
                    str(m.get("id")),
                    str(m.get("kind") or "?"),
                    str(m.get("state")),
                    f"{load:.1f} s" if isinstance(load, (int, float)) else "",
                    _ago(m.get("last_used")),
                    where,
                ]
            )
    print_table(rows, ["MODEL", "KIND", "STATE", "LOAD TIME", "LAST USED", "SERVER"])
    return 0
