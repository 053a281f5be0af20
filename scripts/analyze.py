"""Analyse the answers of a listening test: win rates, mean opinion scores, agreement between raters.

Win rate of each model (against all others and head to head) with a two-sided binomial test and a Wilson 95 %
interval ("no preference" answers are ties, left out of the rate); MOS per model and question with a 95 %
interval; Krippendorff's alpha and Fleiss' kappa between raters. Writes CSV files, summary.json, report.md and
listening_test.png to OUT (default FOLDER/analysis) and prints the report.
"""

from __future__ import annotations

import argparse
import sys
import typing as tp
from pathlib import Path

from genrecraft.core import cli
from scripts.listening import analysis


def build_parser(prog: str = "python -m scripts.analyze") -> argparse.ArgumentParser:
    parser = cli.parser(prog, __doc__)
    parser.add_argument("folder", type=Path, help="the listening-test folder (python -m scripts.make_pairs --out)")
    parser.add_argument("--key", type=Path, default=None, help="the key file (default FOLDER/key.json)")
    parser.add_argument("--db", type=Path, default=None, help="the ratings database (default FOLDER/ratings.sqlite)")
    cli.add_out(parser, required=False, type=Path, help="output folder (default FOLDER/analysis)")
    parser.add_argument("--include-incomplete", action="store_true",
                        help="also use pairs a rater answered only in part (default: finished pairs only)")
    return parser


def run(args: argparse.Namespace) -> int:
    result = analysis.analyze(args.folder, args.key, args.db, args.out, complete_only=not args.include_incomplete)
    print(analysis.markdown_report(result))
    for name, path in result.files.items():
        print(f"{name}: {path}")
    return 0


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m scripts.analyze") -> int:
    return cli.run(run, build_parser(prog).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
