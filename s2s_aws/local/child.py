"""Launcher that ties a local train/serve program to the life of the process that owns the stack.

The local control plane starts each program in its own process group (so that stopping a job or an
endpoint can signal the program and everything it spawned). A process group outlives its creator:
when the owner of the stack dies abruptly (SIGKILL, OOM killer, a crash), nothing would stop the
``s2s-serve`` / ``s2s-train`` processes it started, and they would run forever. So the stack starts

    python -m s2s_aws.local.child --parent-pid <owner pid> -- <program argv>

in the new process group instead of the program itself. The launcher runs the program as its
child (same group, same stdin/stdout/stderr), waits for it and exits with its status (a program
killed by signal N makes the launcher die of signal N too). A watchdog thread waits for the owner
to disappear — a pidfd on Linux, otherwise polling the parent pid — and then stops the group:
SIGTERM, then SIGKILL after ``--grace`` seconds.

Signals sent to the whole group (what :func:`s2s_aws.local.support.terminate` does) reach the
program directly; the launcher ignores SIGTERM/SIGINT/SIGHUP itself and keeps waiting for the
program, so the program's graceful shutdown is not cut short.

``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that forked exits, and the stack
forks from short-lived worker threads.
"""
from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Sequence

__all__ = ["wrap_argv", "main"]

#: seconds between SIGTERM and SIGKILL when the owner is gone
DEFAULT_GRACE_S = 5.0
_POLL_S = 0.5


def wrap_argv(argv: Sequence[str], parent_pid: int | None = None, grace_s: float = DEFAULT_GRACE_S) -> list[str]:
    """The argv that runs ``argv`` under this launcher, watching ``parent_pid`` (default: this process)."""
    pid = os.getpid() if parent_pid is None else parent_pid
    return [sys.executable, "-m", "s2s_aws.local.child", "--parent-pid", str(pid), "--grace", str(grace_s),
            "--", *argv]


def _wait_for_parent_exit(parent_pid: int) -> None:
    """Return once ``parent_pid`` has exited (or is no longer our parent)."""
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(parent_pid)
        except OSError:  # already gone, or the kernel lacks pidfds
            pidfd = None
    try:
        if os.getppid() != parent_pid:  # the owner died before we started watching it
            return
        if pidfd is not None:
            while True:
                readable, _, _ = select.select([pidfd], [], [])
                if readable:
                    return
        while os.getppid() == parent_pid:  # reparented to init/subreaper when the owner dies
            time.sleep(_POLL_S)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _stop_group(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the program (and its group when we lead one), SIGKILL it after ``grace_s``."""
    leads_group = os.getpgid(0) == os.getpid()
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            if leads_group:
                os.killpg(os.getpid(), sig)  # our own handlers make SIGTERM a no-op for the launcher
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGTERM and leads_group:
                continue  # the program is gone; SIGKILL whatever else it left in the group
            return
        except subprocess.TimeoutExpired:
            continue


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m s2s_aws.local.child",
                                description="Run a program; stop it when the parent process disappears.")
    p.add_argument("--parent-pid", type=int, required=True, help="pid of the process that owns the program")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE_S,
                   help=f"seconds between SIGTERM and SIGKILL once the parent is gone (default {DEFAULT_GRACE_S:g})")
    p.add_argument("argv", nargs=argparse.REMAINDER, help="-- then the program and its arguments")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the program given after ``--``; its exit status becomes ours."""
    args = _parser().parse_args(argv)
    command = list(args.argv)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("s2s_aws.local.child: error: no program given; pass -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    try:
        proc = subprocess.Popen(command)  # inherits stdio, env, cwd and the process group
    except OSError as e:
        print(f"s2s_aws.local.child: error: cannot start {command[0]!r}: {e}; check the train/serve command",
              file=sys.stderr)
        return 127
    # handlers, not SIG_IGN: set after the fork they do not leak into the program
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: None)

    stopping = threading.Event()

    def watchdog() -> None:
        _wait_for_parent_exit(args.parent_pid)
        if proc.poll() is None:
            stopping.set()
            try:  # the pipe to the owner is usually gone with it
                print(f"s2s_aws.local.child: the owning process {args.parent_pid} is gone; stopping "
                      f"{command[0]} (pid {proc.pid})", file=sys.stderr, flush=True)
            except (OSError, ValueError):
                pass
            _stop_group(proc, args.grace)

    guard = threading.Thread(target=watchdog, name="parent-watchdog", daemon=True)
    guard.start()
    code = proc.wait()
    if stopping.is_set():  # let the watchdog finish with the rest of the group
        guard.join(timeout=args.grace + 10)
    if code < 0:  # died of a signal: die of the same one so our parent sees the same status
        sys.stdout.flush()
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1)
    return code


if __name__ == "__main__":
    sys.exit(main())
