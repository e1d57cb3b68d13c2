"""Running a real client's journey script (tests/clients/*_journey.py) against a local stack.

The script runs as a subprocess with only the stack's variables as AWS configuration (what a user
exports after ``s2s-aws local up``), so the client is exercised unmodified; it appends one JSON line
per finished step to a results file, which the tests read step by step.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CLIENTS = Path(__file__).resolve().parent / "clients"
README = Path(__file__).resolve().parent.parent / "README.md"
TRUST_SAGEMAKER = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
# the SDKs' telemetry calls an AWS URL after each call; a test never reaches outside this machine
SAGEMAKER_CONFIG = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"


def prepare_corpus(root: Path) -> Path:
    """A tiny generated English->German corpus, preprocessed; returns the folder with the four files."""
    from s2s_aws.local.corpus import write_corpus
    from s2s_aws.preprocess import preprocess
    c = write_corpus(root / "corpus", num_train=300, num_dev=30, num_test=10, seed=3)
    preprocess(c.train_source, c.train_target, c.dev_source, c.dev_target, output_dir=root / "prep", workers=1)
    return root / "prep"


def bucket_and_role(stack) -> tuple[str, str]:
    """The stack's ``S2S_BUCKET`` and ``S2S_ROLE_ARN`` (``local up`` prints them), asserting that the
    bucket and the role really exist and that the role trusts SageMaker."""
    env = stack.environ()
    assert env.get("S2S_BUCKET") and env.get("S2S_ROLE_ARN"), \
        f"the local stack's environ() names no S2S_BUCKET / S2S_ROLE_ARN: {sorted(env)}"
    stack.client("s3").head_bucket(Bucket=env["S2S_BUCKET"])
    role = stack.client("iam").get_role(RoleName=env["S2S_ROLE_ARN"].rsplit("/", 1)[1])["Role"]
    assert role["Arn"] == env["S2S_ROLE_ARN"]
    doc = role["AssumeRolePolicyDocument"]
    assert "sagemaker.amazonaws.com" in (doc if isinstance(doc, str) else json.dumps(doc))
    return env["S2S_BUCKET"], env["S2S_ROLE_ARN"]


def client_environ(stack, workdir: Path) -> dict[str, str]:
    """The process environment a user has after exporting what ``local up`` prints: no other AWS_*
    or SAGEMAKER_* variable (so nothing turns the SDKs' checks off), telemetry opted out."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SAGEMAKER_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(stack.environ())
    config = workdir / "sagemaker-config.yaml"
    config.write_text(SAGEMAKER_CONFIG)
    env.update(SAGEMAKER_USER_CONFIG_OVERRIDE=str(config), SAGEMAKER_SUPPRESS_V2_WARNING="1",
               HOME=str(workdir))  # no ~/.aws or ~/.config/sagemaker of the machine's user
    return env


@dataclass
class Journey:
    returncode: int
    output: str
    steps: dict[str, dict] = field(default_factory=dict)
    after: dict = field(default_factory=dict)

    def step(self, name: str) -> dict:
        """The details the script recorded for step ``name``; fails the test with the script's
        output when the step did not complete."""
        if name not in self.steps:
            reached = list(self.steps) or ["none"]
            raise AssertionError(f"the client journey did not complete step {name!r} (completed: "
                                 f"{', '.join(reached)}; exit {self.returncode}); its output ends:\n"
                                 f"{self.output[-6000:]}")
        return self.steps[name]


def run_journey(python: Path | str, script: str, stack, prep: Path, workdir: Path,
                timeout_s: float = 600) -> Journey:
    """Run the journey script; ``timeout_s`` stays under pytest's 900 s per test (pyproject.toml), so a
    client that hangs is killed here and its output still reaches the failure message."""
    results = workdir / "results.jsonl"
    results.unlink(missing_ok=True)
    try:
        r = subprocess.run([str(python), str(CLIENTS / script), str(prep), str(results)],
                           env=client_environ(stack, workdir), cwd=workdir, capture_output=True, text=True,
                           timeout=timeout_s)
        code, output = r.returncode, r.stdout + "\n--- stderr ---\n" + r.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        code, output = -1, f"{out}\n--- stderr ---\n{err}\n--- killed after {timeout_s} s ---"
    steps = {}
    if results.exists():
        for line in results.read_text().splitlines():
            d = json.loads(line)
            steps[d.pop("step")] = d
    sm = stack.client("sagemaker")
    after = {"endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
             "endpoint_configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
             "models": [m["ModelName"] for m in sm.list_models()["Models"]]}
    return Journey(code, output, steps, after)


def script_snippet(script: str, marker: str) -> list[str]:
    """The lines of ``script`` between ``# --- README snippet (MARKER) start`` and ``... end``,
    less the ``done(...)`` bookkeeping lines."""
    lines = (CLIENTS / script).read_text().splitlines()
    start = lines.index(f"# --- README snippet ({marker}) start")
    end = lines.index(f"# --- README snippet ({marker}) end")
    return [ln for ln in lines[start + 1:end] if not ln.startswith("done(")]


def readme_block(after_heading: str) -> list[str]:
    """The lines of the first ```python block after the README line ``after_heading``."""
    lines = README.read_text().splitlines()
    i = lines.index(after_heading)
    start = lines.index("```python", i)
    end = lines.index("```", start + 1)
    return lines[start + 1:end]


def assert_deleted_everything(journey) -> None:
    """The journey's last step ran and left no endpoint, endpoint config or model behind."""
    journey.step("delete")
    assert journey.returncode == 0, journey.output[-4000:]
    assert journey.after["endpoints"] == []
    assert journey.after["endpoint_configs"] == []
    assert journey.after["models"] == []
