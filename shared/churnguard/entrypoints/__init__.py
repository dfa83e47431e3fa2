"""Entry points people and other systems call: the HTTP API (``api``) and the ``churn`` CLI (``cli``).

They parse input, call a service (composed by ``churnguard.bootstrap``) and shape the answer, mapping
domain errors to status codes or exit codes in one place each.
"""
