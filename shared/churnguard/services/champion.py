"""The models that answer: the champion and the canary/shadow challenger, cached per container,
and the one way to load a verified Predictor for a version (``load_predictor``).

The alias is re-read at most every ``ttl_s`` seconds, so a promotion takes effect without a
redeploy and the hot path costs one clock read. If the registry or the bucket fails, or a
new bundle does not verify, the last known good model keeps serving; with none cached the
caller gets ModelUnavailableError (the API answers 503), or, when configured, the base-rate
estimate of churnguard.domain.fallback flagged ``"fallback": true``.

A circuit breaker (churnguard.services.breaker) guards the refresh: after a few failures in a row the
bucket and table are left alone for a while (5 s, doubling up to 60 s while they stay down),
then one trial call decides whether to close it again. A bundle that fails its checksums is
reported through ``on_integrity_failure`` (the predict function turns it into the
ArtifactIntegrityFailure metric, which has an alarm) and is never served.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from churnguard.domain.canary import CanaryConfig, Challenger, routes_to_canary
from churnguard.domain.errors import ArtifactIntegrityError, ModelNotFoundError, ModelUnavailableError, StorageError
from churnguard.domain.fallback import FALLBACK_BASE_RATE, FALLBACK_OFF, BaseRateEstimate, estimate_from_metrics
from churnguard.domain.predictor import Predictor
from churnguard.services.breaker import CircuitBreaker, CircuitOpenError
from churnguard.services.ports import ModelStore, Registry

log = logging.getLogger(__name__)

# With a last known good model, a failed refresh is retried after this long instead of the TTL.
RETRY_AFTER_FAILURE_S = 5.0


class ChampionProvider:
    def __init__(
        self,
        registry: Registry,
        store: ModelStore,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_fallback: Callable[[str], None] | None = None,
        max_cached: int = 4,
        on_integrity_failure: Callable[[str, str], None] | None = None,
        breaker: CircuitBreaker | None = None,
        fallback_mode: str = FALLBACK_OFF,
        fallback_base_rate: float | None = None,
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
        self.on_integrity_failure = on_integrity_failure or (lambda version, message: None)
        # Only failures of the dependencies open the circuit; "nothing promoted yet" is an answer.
        self.breaker = breaker or CircuitBreaker(
            "model registry and store",
            clock=clock,
            counts_as_failure=lambda e: isinstance(e, (StorageError, ArtifactIntegrityError)),
        )
        self.fallback_mode = fallback_mode
        self.fallback_base_rate = fallback_base_rate
        self._estimate: BaseRateEstimate | None = None
        self._estimate_next_try = float("-inf")

    @property
    def loaded_version(self) -> str | None:
        return self._champion.version if self._champion else None

    def expire(self) -> None:
        """Re-read the champion alias on the next request (e.g. after a SnapStart restore: the snapshot,
        and the monotonic clock the TTL was set with, may be hours old)."""
        self._next_check = 0.0

    def champion(self) -> Predictor:
        now = self.clock()
        if self._champion is not None and now < self._next_check:
            return self._champion
        try:
            self._champion = self.breaker.call(self._refresh)
            self._next_check = now + self.ttl_s
            return self._champion
        except (StorageError, ArtifactIntegrityError, ModelNotFoundError, CircuitOpenError) as e:
            if self._champion is not None:
                log.warning("champion refresh failed, serving last known good %s: %s", self._champion.version, e)
                self.on_fallback(type(e).__name__)
                self._next_check = now + RETRY_AFTER_FAILURE_S
                return self._champion
            err = ModelUnavailableError(f"no model can be served: {e}")
            err.retry_after_s = max(1, round(getattr(e, "retry_after_s", RETRY_AFTER_FAILURE_S)))  # type: ignore[attr-defined]
            raise err from e

    def _refresh(self) -> Predictor:
        alias = self.registry.alias()
        if not alias:
            raise ModelNotFoundError("no champion model has been promoted yet")
        if self._champion is not None and alias["version"] == self._champion.version:
            return self._champion
        return self.version(alias["version"])

    def fallback_estimate(self) -> BaseRateEstimate | None:
        """The base-rate estimate when configured (FALLBACK_MODE=base_rate), else None.

        The rate comes from the champion's registry record (the table often answers when the
        bucket does not, or when a bundle fails its checksums), else from FALLBACK_BASE_RATE.
        """
        if self.fallback_mode != FALLBACK_BASE_RATE:
            return None
        if self._estimate is None and self.clock() >= self._estimate_next_try:
            # At most one registry read per RETRY_AFTER_FAILURE_S while it keeps failing.
            self._estimate_next_try = self.clock() + RETRY_AFTER_FAILURE_S
            try:
                alias = self.registry.alias()
                if alias:
                    self._estimate = estimate_from_metrics(
                        self.registry.get(alias["version"]).metrics, alias["version"]
                    )
            except (StorageError, ModelNotFoundError) as e:
                log.warning("cannot read the champion's base rate: %s", e)
        if self._estimate is not None:
            return self._estimate
        if self.fallback_base_rate is not None:
            return BaseRateEstimate(base_rate=self.fallback_base_rate, source="FALLBACK_BASE_RATE setting")
        return None

    def version(self, version: str) -> Predictor:
        """A named version, verified on load and cached (a few at most)."""
        cached = self._by_version.get(version)
        if cached is not None:
            self._by_version.move_to_end(version)
            return cached
        try:
            predictor = load_predictor(self.registry, self.store, version)
        except ArtifactIntegrityError as e:
            log.error("refusing model %s: %s", version, e)
            self.on_integrity_failure(version, str(e))
            raise
        self._by_version[version] = predictor
        while len(self._by_version) > self.max_cached:
            self._by_version.popitem(last=False)
        return predictor


def load_predictor(registry: Registry, store: ModelStore, version: str) -> Predictor:
    """The Predictor of a registered version, its bundle verified against the registry's manifest hash.

    Raises ModelNotFoundError (no such version or bundle), ArtifactIntegrityError (a file does not
    match its checksum, or the bundle is unusable) or StorageError.
    """
    mv = registry.get(version)
    return Predictor(store.get(version, mv.manifest_sha256))


class ChallengerProvider:
    """The current challenger, if any, cached per container.

    ``current()`` only reads the cache (it is called before scoring); ``refresh_if_due()`` re-reads
    the registry at most every ``ttl_s`` and loads the model, and is called after a response has
    been computed. Any failure means "no challenger": the champion answers and nothing fails.
    """

    def __init__(
        self,
        read_config: Callable[[], Mapping[str, Any] | None],
        load_version: Callable[[str], Any],
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read_config = read_config
        self.load_version = load_version
        self.ttl_s = ttl_s
        self.clock = clock
        self._current: Challenger | None = None
        # A configured canary whose model could not be loaded: its customers are answered by the champion
        # and their log records say so (canary_error), so the canary stage sees a broken canary as failing.
        self._unavailable: CanaryConfig | None = None
        self._next_check = float("-inf")

    def current(self) -> Challenger | None:
        return self._current

    def unavailable_for(self, customer_key: str | None) -> bool:
        """Whether a configured canary that failed to load should have answered this customer."""
        u = self._unavailable
        return u is not None and not u.shadow and routes_to_canary(customer_key, u.share)

    def refresh_if_due(self) -> None:
        now = self.clock()
        if now < self._next_check:
            return
        self._next_check = now + self.ttl_s
        config: CanaryConfig | None = None
        try:
            raw = self.read_config()
            if not raw:
                self._current = self._unavailable = None
                return
            config = CanaryConfig.from_dict(raw)
            if self._current is None or self._current.config.version != config.version:
                self._current = Challenger(config, self.load_version(config.version))
            elif self._current.config != config:
                self._current = Challenger(config, self._current.predictor)
            self._unavailable = None
        except Exception as e:  # noqa: BLE001 - a broken challenger must never affect the champion
            log.warning("challenger unavailable, the champion answers everyone: %s: %s", type(e).__name__, e)
            self._current, self._unavailable = None, config
