"""Adapters: the only modules that talk to AWS (S3, DynamoDB, Firehose, Step Functions, Secrets Manager)
or the local filesystem. Each takes its client as an argument and translates library errors into
``churnguard.domain.errors``; ``churnguard.bootstrap`` builds the clients and composes them."""
