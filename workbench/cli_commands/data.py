"""``workbench data``: generate a synthetic dataset, print an HDF5 file's tree."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.errors import UserError


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_cmd == "tree":
        from engine.data.h5tree import format_tree

        print(format_tree(args.path, follow_external=args.follow_external))
        return 0
    if args.data_cmd == "gen":
        if args.kind != "retina":
            raise UserError(f"unknown generator {args.kind!r} (known: retina)")
        _check_gen_target(args)
        from engine.data.retina_gen import generate_retina

        t0 = time.perf_counter()
        # three recording blocks unless the file is too short to cut (at least 10 frames a block)
        blocks = args.blocks if args.blocks is not None else max(1, min(3, args.frames // 10))
        generate_retina(args.path, cells=args.cells, frames=args.frames, seed=args.seed, blocks=blocks,
                        repeats=args.repeats)
        print(f"wrote {args.path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        return 0
    raise UserError("usage: workbench data {gen retina PATH | tree PATH}")


def _check_gen_target(args: argparse.Namespace) -> None:
    """Refuse, in one line, what would lose data or surprise: bad sizes, a folder as the
    target, an existing file without --force, a folder that does not exist."""
    for name in ("cells", "frames"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be ≥ 1, got {getattr(args, name)}")
    path = Path(args.path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name, e.g. {path / 'naturalscene.h5'}")
    if path.exists() and not args.force:
        raise UserError(f"{path} exists; add --force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"folder {parent} does not exist; create it first (mkdir -p {parent})")
