"""LocalStack's DynamoDB provider, served by a moto server instead of DynamoDB Local.

DynamoDB Local needs Java and jars that LocalStack downloads at run time, so it cannot start offline. Everything
else stays LocalStack's: the provider (table ARNs, global tables, streams forwarding, TTL, CloudFormation
resources) is the stock one, and only the backend process differs. moto implements conditional writes and
TransactWriteItems with their cancellation reasons. Select with ``PROVIDER_OVERRIDE_DYNAMODB=moto_server``.
"""

from __future__ import annotations

import logging
import sys

from localstack.aws.forwarder import HttpFallbackDispatcher
from localstack.services.dynamodb.provider import DynamoDBProvider
from localstack.services.dynamodb.server import DynamodbServer
from localstack.services.plugins import Service
from localstack.utils.common import TMP_THREADS, ShellCommandThread
from localstack.utils.objects import singleton_factory
from localstack.utils.run import FuncThread

LOG = logging.getLogger(__name__)


class MotoDynamodbServer(DynamodbServer):
    """Runs ``python -m local_lambda_executor.moto_dynamodb`` where DynamoDB Local would run ``java -jar``."""

    def __init__(self) -> None:
        super().__init__(host="127.0.0.1")
        self.db_path = None  # in memory, like DYNAMODB_IN_MEMORY=1

    def do_start_thread(self) -> FuncThread:
        cmd = [sys.executable, "-m", "local_lambda_executor.moto_dynamodb", "--port", str(self.port)]
        LOG.debug("Starting moto DynamoDB server: %s", cmd)
        thread = ShellCommandThread(
            cmd,
            strip_color=True,
            log_listener=lambda line, **_: LOG.debug(line.rstrip()),
            auto_restart=True,
            name="dynamodb-moto",
        )
        TMP_THREADS.append(thread)
        thread.start()
        return thread


@singleton_factory
def moto_dynamodb_server() -> MotoDynamodbServer:
    return MotoDynamodbServer()


class MotoDynamoDBProvider(DynamoDBProvider):
    @staticmethod
    def _new_dynamodb_server() -> DynamodbServer:
        return moto_dynamodb_server()


def create_service() -> Service:
    provider = MotoDynamoDBProvider()
    # as localstack.services.providers.dynamodb: operations the provider does not implement go to the backend
    return Service.for_provider(
        provider,
        dispatch_table_factory=lambda p: HttpFallbackDispatcher(p, p.get_forward_url),
    )
