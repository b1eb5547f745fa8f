"""`ovchat bench`: not yet built."""

from __future__ import annotations

import argparse

from .errors import OvchatError


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace) -> int:
    raise OvchatError("ovchat bench is not built yet")
