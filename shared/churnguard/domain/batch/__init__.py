from churnguard.domain.batch.scorer import *  # noqa: F401,F403  (temporary, split below)
