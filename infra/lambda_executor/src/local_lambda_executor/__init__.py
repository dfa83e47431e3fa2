"""LocalStack plugins for running the churnguard stack on a host without Docker.

- ``LAMBDA_RUNTIME_EXECUTOR=local-process``: each Lambda execution environment is a local Python process
  (:mod:`local_lambda_executor.executor`, child side in :mod:`local_lambda_executor.bootstrap`).
- ``PROVIDER_OVERRIDE_DYNAMODB=moto_server``: LocalStack's own DynamoDB provider, forwarding to a moto server
  instead of DynamoDB Local, which needs Java and jars downloaded at run time
  (:mod:`local_lambda_executor.dynamodb`).

Nothing here is imported at plugin discovery except :mod:`local_lambda_executor.plugins`.
"""
