"""Plugin entry points, kept free of heavy imports: plux imports this module while discovering plugins."""

from __future__ import annotations

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.plugins import aws_provider


class LocalProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "local-process"

    def load(self, *args, **kwargs):
        from local_lambda_executor.executor import LocalProcessRuntimeExecutor

        return LocalProcessRuntimeExecutor


@aws_provider(api="dynamodb", name="moto_server")
def dynamodb_moto_server():
    from local_lambda_executor.dynamodb import create_service

    return create_service()


@aws_provider(api="firehose", name="aws_prefixes")
def firehose_aws_prefixes():
    from localstack.services.plugins import Service

    from local_lambda_executor.firehose import AwsPrefixFirehoseProvider

    return Service.for_provider(AwsPrefixFirehoseProvider())


@aws_provider(api="cloudwatch", name="metric_math_actions")
def cloudwatch_metric_math_actions():
    from localstack.services.plugins import Service

    from local_lambda_executor.cloudwatch import create_provider

    return Service.for_provider(create_provider())
