#!/bin/sh
# Runs the CDK app (cdk.json "app") with the first Python found: the activated environment's
# ($VIRTUAL_ENV), then the repository's .venv, then python3 on PATH.
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "$VIRTUAL_ENV" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    python="$VIRTUAL_ENV/bin/python"
elif [ -x "$here/../.venv/bin/python" ]; then
    python="$here/../.venv/bin/python"
elif command -v python3 >/dev/null 2>&1; then
    python=python3
else
    echo "error: no Python found for the CDK app; activate a virtual environment with the infra dependencies (or create ../.venv)" >&2
    exit 2
fi
exec "$python" "$here/app.py" "$@"
