"""Console function: the console's pages (people, signed in through the Cognito user pool) and the
read-only dashboard routes (machines, behind the API key), one FastAPI app through Mangum.

Everything is built once per container; the call list of the latest batch job is read from its
score files on first use and kept (services/console.py).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from mangum import Mangum

from churnguard.bootstrap import build_services
from churnguard.entrypoints.api import build_console_app

logger = Logger()

app = build_console_app(build_services())
_asgi = Mangum(app, lifespan="off")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _asgi(event, context)
