"""The domain: what churn prediction is, with no I/O.

Schemas and features, training and calibration, model bundles and the scorer, drift, evaluation and
the promotion gate, outcomes and their point-in-time join, canary rules, the registry's rules,
identity and privacy, reports. Nothing here imports boto3, reads the environment or opens a socket;
``lightgbm``/``sklearn``/``pandas`` are imported only where training or batch parsing needs them.
"""
