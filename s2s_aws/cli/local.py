"""``s2s-aws local up`` (serve the embedded AWS in the foreground) and ``s2s-aws quickstart``."""
from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_STATE_DIR = "~/.s2s-aws/local"


def cmd_local_up(args: argparse.Namespace) -> int:
    """Serve the local stack until SIGINT/SIGTERM, then stop every child process and save state."""
    import json

    from ..local import LocalStack
    from ..local.stack import STS_WORKAROUND

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack = LocalStack(args.state_dir, region=getattr(args, "region", None) or "us-east-1", port=args.port)
        try:
            env = stack.environ()
            if getattr(args, "json", False):
                print(json.dumps({"endpoint_url": stack.endpoint_url, "state_dir": str(stack.state_dir),
                                  "bucket": stack.bucket, "role_arn": stack.role_arn,
                                  "environment": env, "sts_workaround": STS_WORKAROUND}), flush=True)
            else:
                print(f"s2s-aws local stack on {stack.endpoint_url} (state in {stack.state_dir})")
                print("Point boto3, the AWS CLI and s2s-aws at it with (S2S_BUCKET and S2S_ROLE_ARN exist there):\n")
                for k, v in env.items():
                    print(f"export {k}={shlex.quote(v)}")
                print(f"\n{STS_WORKAROUND}")
                print("The local API is for this machine's user only: it listens on 127.0.0.1 and runs jobs as you.")
                print("\nPress Ctrl-C to stop (child processes stop, state is saved).", flush=True)
            while not stop.wait(0.5):
                pass
            print("stopping the local stack ...", file=sys.stderr, flush=True)
        finally:
            stack.stop()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    print("local stack stopped; state saved in " + str(stack.state_dir), file=sys.stderr, flush=True)
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..quickstart import run_quickstart

    if (args.source is None) != (args.target is None):
        raise InputError("give both --source and --target (a parallel corpus, one sentence per line), or neither "
                         "to use the generated toy corpus")
    result = run_quickstart(workdir=Path(args.workdir), source=args.source, target=args.target, fast=args.fast,
                            region=getattr(args, "region", None) or "us-east-1")
    if getattr(args, "json", False):
        import json
        print(json.dumps(result.to_dict()))
    return 0


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``local up`` and ``quickstart`` to the ``s2s-aws`` parser."""
    common = list(parents)
    local = subparsers.add_parser("local", help="the embedded AWS (local mode)",
                                  description="Local mode: moto plus a SageMaker control plane that runs jobs here.")
    sub = local.add_subparsers(dest="local_command", metavar="COMMAND")
    sub.required = True
    up = sub.add_parser("up", parents=common, help="serve the local stack in the foreground",
                        description="Start the embedded AWS on 127.0.0.1 and print the variables that point "
                                    "boto3 at it. Ctrl-C stops it and every job/endpoint process.")
    up.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help=f"state folder (default {DEFAULT_STATE_DIR})")
    up.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    up.set_defaults(func=cmd_local_up)

    q = subparsers.add_parser("quickstart", parents=common, help="run the whole journey locally, no AWS account",
                              description="Generate (or read) a parallel corpus, preprocess it, train through a "
                                          "local training job, deploy an endpoint, translate held-out sentences, "
                                          "write an attention heat map, report BLEU and clean up.")
    q.add_argument("--workdir", default="s2s-quickstart", help="working folder (default ./s2s-quickstart)")
    q.add_argument("--source", help="your own source-side corpus (one tokenized sentence per line)")
    q.add_argument("--target", help="your own target-side corpus, line-aligned with --source")
    q.add_argument("--fast", action="store_true", help="smaller corpus and model (about a minute; lower quality)")
    q.set_defaults(func=cmd_quickstart)
