"""Serve the rating page of a listening test on this machine; answers go to an SQLite file as they are given.

Open the printed address in a browser; each rater enters a name and gets the pairs in their own random order.
A rater who closes the page continues where they stopped by entering the same name. Stop the server with Ctrl+C
(nothing is lost: every answer is already on disk). Then run `python -m scripts.analyze FOLDER`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing as tp
import webbrowser
from pathlib import Path

from genrecraft.core import cli
from genrecraft.core.errors import UserError
from scripts.listening import server as server_mod


def build_parser(prog: str = "python -m scripts.rate") -> argparse.ArgumentParser:
    parser = cli.parser(prog, __doc__)
    parser.add_argument("folder", type=Path, help="the listening-test folder written by `python -m scripts.make_pairs`")
    parser.add_argument("--db", type=Path, default=None, help="ratings database (default: FOLDER/ratings.sqlite)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 lets others on "
                             "your network rate, without any login)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--no-require-listen", dest="require_listen", action="store_false", default=None,
                        help="count a pair as answered without both clips having been played to the end")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        server = server_mod.make_server(args.folder, args.db, args.host, args.port, args.require_listen)
    except FileNotFoundError as exc:  # not a listening-test folder: the port is not the problem
        raise UserError(f"{exc}: give the folder `genrecraft listen pairs --out` wrote") from exc
    except OSError as exc:  # the port is taken or the address is not this machine's
        raise UserError(f"cannot serve on {args.host}:{args.port}: {exc}; pick another --port or --host") from exc
    url = server_mod.url_of(server)
    app = server.app  # type: ignore[attr-defined]
    print(f"Listening test: {len(app.test['pairs'])} pairs; answers are saved to {app.store.path}")
    if not server_mod.is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can open the page and rate",
              file=sys.stderr)
    print(f"Open {url} in a browser (Ctrl+C stops the server).", flush=True)
    if args.open:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped; progress per rater:")
        for row in app.store.progress():
            print(f"  {row['rater']}: {row['complete']}/{row['total']}{' (finished)' if row['finished'] else ''}")
    finally:
        server.server_close()
    return 0


def main(argv: tp.Optional[tp.List[str]] = None, prog: str = "python -m scripts.rate") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return cli.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
