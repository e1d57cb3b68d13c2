"""The ``s2s-aws`` command line.

Each command group lives in its own module and exposes ``register(subparsers, parents)``; handlers
import heavy modules (boto3, torch, matplotlib) only when they run, so ``s2s-aws --help`` is fast.
A handler returns an exit code (0 ok, 1 job/endpoint failed, 2 bad input) or None for 0.
Errors of type :class:`s2s_aws.errors.S2SError` are printed as one clear message, never a traceback
(``--debug`` shows it).
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

from ..errors import S2SError

# command-group modules, each with register(subparsers, parents)
_GROUPS = (
    "s2s_aws.cli.data",      # preprocess, inspect
    "s2s_aws.cli.aws",       # upload, train, status, logs, deploy, translate, update-endpoint, transform, cleanup
    "s2s_aws.cli.pipeline",  # pipeline definition/upsert/start/status
    "s2s_aws.cli.local",     # local up, quickstart
    "s2s_aws.cli.resources", # list, hyperparameters, evaluate
    "s2s_aws.cli.tune",      # tune (automatic model tuning)
)


def _common_parser(*, suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """Global options. The copy given to subcommands has no defaults (SUPPRESS), so an option given
    before the command (``s2s-aws --json train ...``) is not overwritten by the subcommand's default,
    and one given after it still counts."""
    common = argparse.ArgumentParser(add_help=False,
                                     argument_default=argparse.SUPPRESS if suppress_defaults else None)
    g = common.add_argument_group("global options")
    g.add_argument("--region", help="AWS region (default: from the environment/profile)")
    g.add_argument("--profile", help="AWS named profile to use")
    g.add_argument("--json", action="store_true", help="machine-readable JSON output (for CI)")
    g.add_argument("-v", "--verbose", action="count", help="more log output (-vv for debug)")
    g.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return common


def _error_document(e: BaseException, exit_code: int) -> str:
    """The one JSON document printed on stdout for an error under --json (same keys as the AWS commands)."""
    out: dict = {"ok": False, "error": str(e), "error_type": type(e).__name__, "exit_code": exit_code}
    for attr in ("job_name", "endpoint_name", "status", "reason", "log_url", "console_url", "path", "offset"):
        if getattr(e, attr, None) is not None:
            out[attr] = getattr(e, attr)
    return json.dumps(out, default=str, ensure_ascii=False)


def build_parser() -> argparse.ArgumentParser:
    common = _common_parser()
    parser = argparse.ArgumentParser(
        prog="s2s-aws",
        description="Train and host sequence-to-sequence models on Amazon SageMaker (or locally).",
        parents=[common],
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"s2s-aws {__version__}")
    parser.set_defaults(region=None, profile=None, json=False, verbose=0, debug=False)
    sub_common = _common_parser(suppress_defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _GROUPS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:  # a group not written yet must not break the others
            if e.name == name:
                continue
            raise
        mod.register(sub, [sub_common])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose or 0, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        try:
            rc = args.func(args)
        except Exception as e:  # botocore errors from any command: mapped in one place
            if type(e).__module__.startswith("botocore") and not isinstance(e, S2SError):
                from .._aws import map_botocore_error

                raise map_botocore_error(e, f"s2s-aws {args.command}") from e
            raise
    except S2SError as e:
        if args.debug:
            raise
        if args.json and not getattr(e, "json_printed", False):
            print(_error_document(e, e.exit_code))
        print(f"s2s-aws: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # SIGINT, or SIGTERM during an upload (channels.UploadInterrupted)
        print(f"s2s-aws: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 128 + int(getattr(e, "signum", 2))
    return 0 if rc is None else int(rc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
