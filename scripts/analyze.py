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

from scripts.listening import analysis


def main(argv: tp.Optional[tp.List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.analyze", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the listening-test folder (python -m scripts.make_pairs --out)")
    parser.add_argument("--key", type=Path, default=None, help="the key file (default FOLDER/key.json)")
    parser.add_argument("--db", type=Path, default=None, help="the ratings database (default FOLDER/ratings.sqlite)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default FOLDER/analysis)")
    parser.add_argument("--include-incomplete", action="store_true",
                        help="also use pairs a rater answered only in part (default: finished pairs only)")
    args = parser.parse_args(argv)
    try:
        result = analysis.analyze(args.folder, args.key, args.db, args.out, complete_only=not args.include_incomplete)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(analysis.markdown_report(result))
    for name, path in result.files.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
