"""The package's own promises: a light import path and a working CLI entry point."""
from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "aws_cdk", "sagemaker", "matplotlib", "moto", "starlette", "uvicorn")


def test_import_is_light():
    code = (
        "import sys, s2s_aws\n"
        "s2s_aws.Hyperparameters\n"  # the schema is part of the light path
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import s2s_aws pulled in: {out.stdout.strip()}"


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "s2s_aws", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for command in ("preprocess", "inspect", "train", "deploy", "translate", "quickstart", "pipeline"):
        assert command in out.stdout, f"'{command}' missing from s2s-aws --help"


def test_cli_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from s2s_aws.cli import build_parser\n"
        "build_parser()\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_command_is_a_usage_error():
    out = subprocess.run([sys.executable, "-m", "s2s_aws", "no-such-command"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_global_options_work_before_and_after_the_command():
    from s2s_aws.cli import build_parser

    parser = build_parser()
    before = parser.parse_args(["--json", "--region", "eu-west-1", "inspect", "x.rec"])
    after = parser.parse_args(["inspect", "x.rec", "--json", "--region", "eu-west-1"])
    neither = parser.parse_args(["inspect", "x.rec"])
    for args in (before, after):
        assert args.json is True and args.region == "eu-west-1"
    assert neither.json is False and neither.region is None and neither.verbose == 0


def test_every_public_name_resolves():
    import s2s_aws

    missing = [name for name in s2s_aws.__all__ if getattr(s2s_aws, name, None) is None]
    assert missing == []
    assert s2s_aws.Session.__module__ == "s2s_aws.session"


def _layering_contracts() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from pathlib import Path

    with open(Path(__file__).parents[1] / "pyproject.toml", "rb") as f:
        return {c["id"]: c for c in tomllib.load(f)["tool"]["importlinter"]["contracts"]}


def test_layering_contracts_name_every_sdk_module():
    """The import-linter contracts list s2s_aws's modules; a new module must be added to them."""
    import pkgutil

    import s2s_aws

    modules = {f"s2s_aws.{m.name}" for m in pkgutil.iter_modules(s2s_aws.__path__)} - {
        "s2s_aws.contract", "s2s_aws.errors"}
    contracts = _layering_contracts()
    for cid in ("algorithm-imports-only-the-contract", "contract-imports-nothing-higher"):
        listed = {m for m in contracts[cid]["forbidden_modules"] if m.startswith("s2s_aws.")}
        assert listed == modules, (f"pyproject.toml contract {cid}: add {sorted(modules - listed)}, "
                                   f"remove {sorted(listed - modules)}")
    assert {"boto3", "botocore", "torch"} <= set(contracts["contract-imports-nothing-higher"]["forbidden_modules"])


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def test_contract_constants_are_assigned_only_in_layout():
    """Special ids, channel names and file names are assigned in s2s_aws/contract/layout.py only."""
    import ast
    from pathlib import Path

    from s2s_aws.contract import layout

    names = {"PAD_ID", "UNK_ID", "BOS_ID", "EOS_ID", "PAD", "UNK", "BOS", "EOS", "SPECIALS", "CHANNELS",
             "CHANNEL_NAMES", "VOCAB_FILES", "MODEL_FILES", "OUTPUT_FILES", "PREP_FILES", "FORMAT_VERSION"}
    values = {layout.TRAIN_FILE, layout.VALIDATION_FILE, layout.SOURCE_VOCAB_FILE, layout.TARGET_VOCAB_FILE,
              layout.MODEL_WEIGHTS_FILE, layout.MODEL_FORMAT_FILE, layout.CHANNELS, layout.VOCAB_FILES,
              layout.SPECIALS, layout.PREP_FILES, layout.MODEL_FILES}
    root = Path(__file__).parents[1]
    found = []
    for path in sorted([*root.glob("s2s_aws/**/*.py"), *root.glob("containers/seq2seq/s2s_algorithm/*.py")]):
        rel = path.relative_to(root).as_posix()
        if rel in ("s2s_aws/contract/layout.py", "s2s_aws/contract/model_dir.py"):
            continue  # model_dir.py assigns FORMAT_VERSION, the model directory's own number
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.Assign, ast.AnnAssign)):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            try:
                value = ast.literal_eval(node.value) if node.value is not None else None
            except (ValueError, TypeError, SyntaxError, RecursionError):
                value = None
            if value is None:
                continue  # not a literal: e.g. an alias of layout's constant (OUTPUT_FILES = layout.PREP_FILES)
            if any(isinstance(t, ast.Name) and t.id in names for t in flat) or (
                    isinstance(value, (str, tuple)) and _hashable(value) and value in values):
                found.append(f"{rel}:{node.lineno}")
    assert not found, f"contract constants assigned outside s2s_aws/contract/layout.py: {found}"
