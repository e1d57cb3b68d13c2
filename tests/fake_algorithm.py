"""A tiny stand-in for the seq2seq algorithm that honours the container contract, without torch.

It exists to test and demonstrate the local control plane quickly::

    python tests/fake_algorithm.py train                    # reads $S2S_ML_ROOT like s2s-train
    python tests/fake_algorithm.py serve --model-dir D --port N

Training checks the three channels, prints metric lines and writes ``model/fake-model.json``; the
hyperparameter ``fake_seconds`` makes it run that long (it stops cleanly on SIGTERM), ``fake_version``
is stored in the model. Serving "translates" by reversing the tokens and reports the model version.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from s2s_aws.contract.layout import CHANNELS, HYPERPARAMETERS_FILE
from s2s_aws.contract.metrics import format_metric


def _train() -> int:
    root = Path(os.environ.get("S2S_ML_ROOT", "/opt/ml"))
    hp = json.loads((root / "input/config" / HYPERPARAMETERS_FILE).read_text())
    channels = json.loads((root / "input/config/inputdataconfig.json").read_text())
    failure = root / "output" / "failure"
    for ch in CHANNELS:
        if ch not in channels or not any((root / "input/data" / ch).glob("*")):
            failure.parent.mkdir(parents=True, exist_ok=True)
            failure.write_text(f"Channel {ch!r} is missing: the algorithm needs train, validation and vocab.")
            print(f"error: channel {ch} missing", flush=True)
            return 2
    stopping = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGTERM, on_term)
    seconds = float(hp.get("fake_seconds", "0"))
    deadline = time.time() + seconds
    step = 0
    while True:
        step += 1
        print(format_metric("train:perplexity", 100.0 / step, step=step), flush=True)
        if stopping or time.time() >= deadline:
            break
        time.sleep(0.1)
    print(format_metric("validation:bleu", min(99.0, 10.0 * step), step=step), flush=True)
    model = root / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "fake-model.json").write_text(json.dumps({"version": hp.get("fake_version", "1"), "steps": step}))
    print("training done" + (" (stopped)" if stopping else ""), flush=True)
    return 0


class _Handler(BaseHTTPRequestHandler):
    model: dict = {}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        print("serve: " + format % args, flush=True)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._send(200, b"{}")
        else:
            self._send(404, b'{"error": "not found"}')

    def do_POST(self) -> None:
        if self.path != "/invocations":
            return self._send(404, b'{"error": "not found"}')
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        delay = float(os.environ.get("FAKE_SERVE_DELAY", "0"))
        if delay:
            time.sleep(delay)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        version = self.model.get("version", "?")
        try:
            if ctype == "application/json":
                req = json.loads(body)
                preds = [{"target": " ".join(reversed(inst["data"].split())), "model": version}
                         for inst in req["instances"]]
                return self._send(200, json.dumps({"predictions": preds}).encode())
            if ctype == "application/jsonlines":
                lines = [json.loads(ln) for ln in body.decode().splitlines() if ln.strip()]
                out = "".join(json.dumps({"target": " ".join(reversed(x["source"].split()))}) + "\n" for x in lines)
                return self._send(200, out.encode(), "application/jsonlines")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return self._send(400, json.dumps({"error": f"malformed body: {e}"}).encode())
        self._send(415, json.dumps({"error": f"unsupported content type {ctype!r}"}).encode())


def _serve(argv: list[str]) -> int:
    model_dir = Path(os.environ.get("S2S_ML_ROOT", "/opt/ml")) / "model"
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    if "--model-dir" in argv:
        model_dir = Path(argv[argv.index("--model-dir") + 1])
    if "--port" in argv:
        port = int(argv[argv.index("--port") + 1])
    model_file = model_dir / "fake-model.json"
    if not model_file.exists():
        print(f"error: no model at {model_file}", flush=True)
        return 3
    _Handler.model = json.loads(model_file.read_text())
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"serving model version {_Handler.model.get('version')} on port {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":
        return _train()
    if argv and argv[0] == "serve":
        return _serve(argv[1:])
    print("usage: python tests/fake_algorithm.py train | serve [--model-dir D] [--port N]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
