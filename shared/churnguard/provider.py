"""The champion, cached per container.

The alias is re-read at most every ``ttl_s`` seconds, so a promotion takes effect without a
redeploy and the hot path costs one clock read. If the registry or the bucket fails, or a
new bundle does not verify, the last known good model keeps serving; with none cached the
caller gets ModelUnavailableError (the API answers 503).
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Callable

from .adapters.model_store import S3ModelStore
from .adapters.registry import DynamoRegistry
from .errors import ArtifactIntegrityError, ModelNotFoundError, ModelUnavailableError, StorageError
from .predictor import Predictor

log = logging.getLogger(__name__)

# After a failed refresh, wait this long before trying the dependency again (a simple breaker).
RETRY_AFTER_FAILURE_S = 5.0


class ChampionProvider:
    def __init__(
        self,
        registry: DynamoRegistry,
        store: S3ModelStore,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_fallback: Callable[[str], None] | None = None,
        max_cached: int = 4,
    ) -> None:
        self.registry = registry
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock
        self.on_fallback = on_fallback or (lambda reason: None)
        self.max_cached = max_cached
        self._champion: Predictor | None = None
        self._next_check = 0.0
        self._by_version: OrderedDict[str, Predictor] = OrderedDict()

    @property
    def loaded_version(self) -> str | None:
        return self._champion.version if self._champion else None

    def champion(self) -> Predictor:
        now = self.clock()
        if self._champion is not None and now < self._next_check:
            return self._champion
        try:
            alias = self.registry.alias()
            if not alias:
                raise ModelNotFoundError("no champion model has been promoted yet")
            if self._champion is None or alias["version"] != self._champion.version:
                self._champion = self.version(alias["version"])
            self._next_check = now + self.ttl_s
            return self._champion
        except (StorageError, ArtifactIntegrityError, ModelNotFoundError) as e:
            if self._champion is not None:
                log.warning("champion refresh failed, serving last known good %s: %s", self._champion.version, e)
                self.on_fallback(type(e).__name__)
                self._next_check = now + RETRY_AFTER_FAILURE_S
                return self._champion
            raise ModelUnavailableError(f"no model can be served: {e}") from e

    def version(self, version: str) -> Predictor:
        """A named version, verified on load and cached (a few at most)."""
        cached = self._by_version.get(version)
        if cached is not None:
            self._by_version.move_to_end(version)
            return cached
        mv = self.registry.get(version)
        predictor = Predictor(self.store.get(version, mv.manifest_sha256))
        self._by_version[version] = predictor
        while len(self._by_version) > self.max_cached:
            self._by_version.popitem(last=False)
        return predictor
