"""Run a Lambda handler module outside Lambda, as tests and benchmarks do.

module = import_function("predict")            # functions/predict/app.py, imported fresh
module.handler(event, LambdaContext("PredictFunction"))
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

from churnguard.local.template import find_template

_counter = itertools.count()


def import_function(name: str, root: Path | None = None) -> ModuleType:
    """Import functions/<name>/app.py as a new module: module-level code runs again, as at a cold start."""
    from churnguard.settings import get_settings

    get_settings.cache_clear()  # settings are read once per container; a fresh import is a new container
    root = root or find_template().parent
    path = root / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"fn_{name}_{next(_counter)}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


class LambdaContext:
    """The attributes of Lambda's context object that Powertools and our handlers read."""

    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def __init__(self, function_name: str = "test") -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000
