"""Shared by the infra tests: ``infra/`` importable, the IAM facts they check, the deploy Lambda."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

INFRA = Path(__file__).resolve().parents[1] / "infra"
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))   # `from app import build_app`, `import s2s_infra`

#: IAM actions AWS allows only on the "*" resource (each acknowledged with a reason in roles_stack.py)
WILDCARD_ONLY = frozenset({"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"})


def iam_statements(template: dict) -> Iterator[tuple[str, dict]]:
    """``(logical id, statement)`` of every inline and managed IAM policy in a template (as JSON)."""
    for logical, res in template.get("Resources", {}).items():
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for st in res["Properties"]["PolicyDocument"]["Statement"]:
                yield logical, st


def load_deploy_function(name: str = "s2s_deploy_function") -> ModuleType:
    """The pipeline's register-and-deploy Lambda (``infra/s2s_infra/functions/deploy/index.py``)."""
    spec = importlib.util.spec_from_file_location(name, INFRA / "s2s_infra" / "functions" / "deploy" / "index.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
