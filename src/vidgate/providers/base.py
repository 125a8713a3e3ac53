"""The contract between the worker and an upstream video API.

A provider module knows its upstream's wire protocol and nothing else. It is
handed its credentials, base URL and ``httpx.AsyncClient`` (``ProviderContext``);
it never reads the environment or a global client. The worker is the only caller.

Error tree (every upstream failure surfaces as exactly one of these)::

    UpstreamError                     retryable=False unless stated
    ├── UpstreamRejected              400-class: bad input or content policy; reason shown to the client
    │   └── UpstreamContentPolicy     the upstream refused the content (422 where a dialect has it)
    ├── UpstreamAuthError             the operator's upstream credentials are wrong (never the client's fault)
    ├── UpstreamRateLimited           429; retryable; may carry retry_after_s
    ├── UpstreamUnavailable           5xx, connection refused or reset; retryable
    ├── UpstreamTimeout               the upstream did not answer in time; retryable
    ├── UpstreamProtocolError         a shape we do not understand (-> 502 with the upstream request id)
    └── UpstreamOutputExpired         the output URL is gone before we could fetch it

``outcome_unknown`` on an error says the upstream may have accepted a submission
although we never read its acceptance (a read timeout or a reset after the request
was sent, an unreadable or wrongly shaped 2xx answer). The worker then reconciles
(idempotency key, ``find``) before it submits again. Connect errors, 4xx, 429 and
5xx answers are proof that nothing was accepted.

Unknown upstream status words are never guessed: an adapter reports them as
``running`` (and logs them) until the job's deadline expires it; ``state_for``
is that rule, written once.

A provider module must implement ``MinimalAdapter`` (name, capabilities, submit,
poll). ``AdapterBase`` gives everything else a shared default, and ``complete()``
turns any minimal adapter into the full ``ProviderAdapter`` the worker calls.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from vidgate.domain.job import ReportedCost
from vidgate.domain.request import GenerationRequest

JSON = dict[str, Any]
State = Literal["queued", "running", "succeeded", "failed", "canceled"]

log = logging.getLogger(__name__)


class Capability(enum.Enum):
    """What an adapter can do beyond submit and poll. Declared as data."""

    CANCEL = "cancel"
    CALLBACK = "callback"  # the upstream can call us back when the job changes
    SIGNED_CALLBACK = "signed_callback"  # ... and signs those calls, so they can be trusted
    IMAGE_INPUT = "image_input"
    LAST_FRAME = "last_frame"
    AUDIO = "audio"
    NEGATIVE_PROMPT = "negative_prompt"
    SEED = "seed"
    # Re-submitting with the same idempotency key returns the same upstream job.
    IDEMPOTENT_SUBMIT = "idempotent_submit"
    # ``find`` can locate an upstream job created by an earlier attempt of a gateway job.
    FIND = "find"


# ---------------------------------------------------------------------- errors


class UpstreamError(Exception):
    """An upstream call failed. ``retryable`` says whether another try may work."""

    retryable: bool = False
    code: str = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        # True when a submission may have been accepted upstream (see the module docstring).
        self.outcome_unknown = outcome_unknown


class UpstreamRejected(UpstreamError):
    """The upstream refused the request as invalid; resending it will not help."""

    code = "upstream_rejected"


class UpstreamContentPolicy(UpstreamRejected):
    """The upstream refused the prompt or the media on content-policy grounds."""

    code = "content_policy_violation"


class UpstreamAuthError(UpstreamError):
    """The gateway's credentials for this upstream were refused."""

    code = "upstream_auth_error"


class UpstreamRateLimited(UpstreamError):
    """The upstream asked us to slow down."""

    retryable = True
    code = "upstream_rate_limited"


class UpstreamUnavailable(UpstreamError):
    """The upstream is down or overloaded (5xx, connection refused)."""

    retryable = True
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer within our time limit."""

    retryable = True
    code = "upstream_timeout"


class UpstreamProtocolError(UpstreamError):
    """The upstream answered with a shape we do not understand."""

    code = "upstream_protocol_error"


class UpstreamOutputExpired(UpstreamError):
    """The upstream's output is no longer downloadable."""

    code = "upstream_output_expired"


# ---------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class Route:
    """One way to serve a catalog model: which provider, which upstream model, how to map."""

    provider: str
    model: str
    # Upstream model to use instead when the request carries an image (i2v variant).
    image_model: str | None = None
    # Fixed fields merged into the upstream request body (catalog data, not code).
    params: Mapping[str, Any] = field(default_factory=dict)
    # Clip lengths the upstream can make; empty when it makes whatever the model sells.
    durations: tuple[int, ...] = ()
    # Resolutions and aspect ratios the upstream can make; empty when it makes whatever
    # the model sells.
    resolutions: tuple[str, ...] = ()
    aspect_ratios: tuple[str, ...] = ()

    def cannot_make(self, resolution: str | None, aspect_ratio: str | None) -> str | None:
        """What this route cannot make of that shape (``"resolution 4k (ark makes 480p, 720p)"``);
        None when it can make it."""
        if resolution is not None and self.resolutions and resolution not in self.resolutions:
            return f"resolution {resolution} ({self.provider} makes {', '.join(self.resolutions)})"
        if aspect_ratio is not None and self.aspect_ratios and aspect_ratio not in self.aspect_ratios:
            return f"aspect ratio {aspect_ratio} ({self.provider} makes {', '.join(self.aspect_ratios)})"
        return None

    def fit_duration(self, requested: int | None) -> int | None:
        """The upstream duration to ask for: the shortest allowed that is not shorter
        than ``requested``; None when this route cannot make a clip that long."""
        if not self.durations or requested is None:
            return requested
        return min((d for d in self.durations if d >= requested), default=None)


@dataclass(frozen=True, slots=True)
class SubmitAttempt:
    """Which try of which gateway job a submission is; built by the worker.

    ``job_id`` goes upstream wherever the upstream keeps a client reference, and
    ``idempotency_key`` (stable across attempts of one job) wherever it honours one.
    """

    job_id: str
    number: int
    idempotency_key: str

    @classmethod
    def first(cls, job_id: str) -> SubmitAttempt:
        return cls(job_id=job_id, number=1, idempotency_key=idempotency_key_for(job_id))


def idempotency_key_for(job_id: str) -> str:
    """The idempotency key every attempt of one gateway job sends."""
    return f"vg_{job_id}"


@dataclass(frozen=True, slots=True)
class UpstreamRef:
    """What we keep to find a job upstream again. ``state`` must be JSON-serialisable."""

    id: str
    request_id: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpstreamOutput:
    """One finished output file, and how to download it."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    kind: Literal["video", "thumbnail"] = "video"


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    """A normalised answer to "how is that job doing?"."""

    state: State
    progress: int | None = None  # 0..100 when the upstream says
    eta_s: float | None = None  # seconds until done, when the upstream hints
    queue_position: int | None = None
    outputs: tuple[UpstreamOutput, ...] = ()
    error: UpstreamError | None = None  # set when state == "failed"
    raw_status: str | None = None  # the upstream's own word, for logs and the job record
    # What the upstream said the job cost, where its answer says (xAI's cost, Ark's tokens...).
    reported_cost: ReportedCost | None = None

    @property
    def terminal(self) -> bool:
        return self.state in ("succeeded", "failed", "canceled")


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Everything an adapter may use. Built by the registry from configuration."""

    http: httpx.AsyncClient
    api_key: str | None
    base_url: str
    # Provider-specific extra settings (e.g. Kling's secret key, ComfyUI's workflow).
    options: Mapping[str, str] = field(default_factory=dict)
    # Where the upstream may call us back (None when VIDGATE_PUBLIC_URL is not set).
    callback_url: str | None = None
    # Per-call timeout for polls, cancels and other short calls, in seconds.
    timeout_s: float = 30.0
    # Per-call timeout for the call that creates an upstream job (longer: some upstreams
    # validate and upload media before they answer).
    submit_timeout_s: float = 120.0
    # A client for URLs a *user* chose (input images): every hop checked by the URL guard.
    # None when the pool was built without a guard; adapters then refuse to fetch them.
    user_http: httpx.AsyncClient | None = None


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """An inbound HTTP call from an upstream, as raw as we received it."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """What a callback told us: which upstream job, and whether it is trustworthy."""

    upstream_id: str
    verified: bool
    status: UpstreamStatus | None = None  # only honoured when verified


def state_for(provider: str, table: Mapping[str, State], word: str, upstream_id: str | None = None) -> State:
    """The normalised state for an upstream's status word; unknown words mean running.

    Never guesses an end from a word we do not know: the job's deadline expires it.
    """
    state = table.get(word)
    if state is None:
        log.warning("%s: unknown status %r for %s; treating it as running", provider, word, upstream_id)
        return "running"
    return state


@runtime_checkable
class MinimalAdapter(Protocol):
    """What a provider module must implement: the rest has shared defaults."""

    name: str
    capabilities: frozenset[Capability]

    async def submit(self, req: GenerationRequest, route: Route, attempt: SubmitAttempt) -> UpstreamRef:
        """Start a job upstream. Raises an ``UpstreamError`` subclass on failure."""

    async def poll(self, ref: UpstreamRef) -> UpstreamStatus:
        """Ask how the job is doing. Raises an ``UpstreamError`` subclass on failure."""


@runtime_checkable
class ProviderAdapter(MinimalAdapter, Protocol):
    """One upstream API as the worker sees it (``complete()`` fills in the defaults)."""

    async def cancel(self, ref: UpstreamRef) -> None:
        """Cancel upstream; only called when ``Capability.CANCEL`` is declared."""

    async def find(self, attempt: SubmitAttempt, route: Route) -> UpstreamRef | None:
        """The upstream job an earlier attempt of this job created, or None.

        Only meaningful when ``Capability.FIND`` is declared."""

    def parse_callback(self, call: CallbackRequest) -> CallbackResult | None:
        """Read an upstream callback; None when it is not one of ours."""

    def ref_from_callback(self, upstream_id: str, route: Route) -> UpstreamRef | None:
        """A pollable reference to the upstream job a *verified* callback named, for an
        attempt whose submit answer was lost; ``route.model`` is the upstream model the
        attempt was sent to. None (the default) when the id alone is not enough to poll.

        This is how an upstream without ``FIND`` reconciles: the callback URL names the
        gateway job (``?job=``), the signed callback names the upstream job."""

    def challenge_response(self, call: CallbackRequest) -> dict[str, Any] | None:
        """The answer to an upstream's URL-verification handshake, or None when ``call``
        is not one (MiniMax echoes a challenge before it sends anything real)."""

    def stream_output(self, output: UpstreamOutput) -> AsyncIterator[bytes]:
        """Yield the bytes of one output, in chunks, never the whole file at once."""

    async def check(self) -> bool:
        """Prove credentials and base URL with one cheap call that buys nothing.

        True when proved; False when this upstream has no such call; raises an
        ``UpstreamError`` (``UpstreamAuthError`` for refused credentials) otherwise."""
