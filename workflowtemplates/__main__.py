"""``python -m workflowtemplates [render] [--out DIR] [--docs FILE|--no-docs] [--check] [--image NAME=REF]``.

Renders ARC's ClusterWorkflowTemplates to ``deploy/workflowtemplates/{oci,helm,file}.yaml`` and their
parameter tables into ``docs/workflowtemplates.md``. ``--check`` writes nothing and exits 1 when a file is
stale. ``--image`` overrides a tool image (pinned by digest) for a deployment-specific render; with it,
render to your own ``--out`` and pass ``--no-docs``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workflowtemplates.render import DEFAULT_DOCS, DEFAULT_OUT, render, stale_files, write


def _image(value: str) -> tuple[str, str]:
    name, sep, reference = value.partition("=")
    if not sep or not name or not reference:
        raise argparse.ArgumentTypeError(f"expected NAME=REFERENCE, got {value!r}")
    return name, reference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workflowtemplates", description=__doc__)
    parser.add_argument("command", nargs="?", default="render", choices=["render"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (%(default)s)")
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="docs file to update (%(default)s)")
    parser.add_argument("--no-docs", action="store_true", help="do not touch the docs file")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if anything is stale")
    parser.add_argument("--image", type=_image, action="append", default=[], metavar="NAME=REF")
    args = parser.parse_args(argv)
    try:
        rendered = render(dict(args.image))
    except ValueError as exc:
        parser.error(str(exc))
    docs = None if args.no_docs else args.docs
    if args.check:
        stale = stale_files(args.out, rendered, docs)
        for path in stale:
            print(f"stale: {path} (run `python -m workflowtemplates render`)", file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.out, rendered, docs):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
