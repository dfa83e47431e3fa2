"""LocalStack's Firehose provider, delivering to S3 under the keys AWS would use.

LocalStack 2026.3 writes a custom prefix such as ``predictions/dt=!{timestamp:yyyy-MM-dd}/`` literally and adds its
own ``YYYY/MM/DD/HH/`` folders below it, so a reader of ``predictions/dt=2026-05-01/`` (the drift check, the training
set) finds nothing. This provider evaluates the expressions as AWS does (firehose_prefix.py); everything else is the
stock provider. Select with ``PROVIDER_OVERRIDE_FIREHOSE=aws_prefixes`` (infra/localstack/up.sh does).
"""

from __future__ import annotations

from datetime import UTC, datetime

from localstack.services.firehose.provider import FirehoseProvider

from local_lambda_executor.firehose_prefix import has_expressions, object_key


class AwsPrefixFirehoseProvider(FirehoseProvider):
    def _get_s3_object_path(self, stream_name, prefix, file_extension):  # noqa: ANN001 - LocalStack's signature
        if not prefix or not has_expressions(prefix):
            return super()._get_s3_object_path(stream_name, prefix, file_extension)
        return object_key(stream_name, prefix, datetime.now(UTC), file_extension or "")
