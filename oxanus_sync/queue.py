"""Queue declarations: a queue's name and the policy that every Runner applies to it.

A static `Queue` has a fixed name. A `QueueFamily` declares queues made at run time: enqueueing to
`family("acme")` creates the member `prefix[acme]` on first use, and every member shares the
family's policy.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from oxanus_sync.errors import ConfigurationError
from oxanus_sync.validation import check_integer, check_number, check_seconds

# Braces would change the Redis Cluster hash tag, and whitespace breaks the CLI's output. Square
# brackets are left out so that the names of family members, `prefix[key]`, never collide with
# a static queue's name.
_NAME_CHARACTERS = r"[A-Za-z0-9_.:#@/-]{1,200}"
_QUEUE_NAME = re.compile(_NAME_CHARACTERS)
_MEMBER_NAME = re.compile(rf"({_NAME_CHARACTERS})\[({_NAME_CHARACTERS}|\*)\]")

# The key that stands for the whole family in its name, `prefix[*]`; no member key contains "*".
WHOLE_FAMILY = "*"

DEFAULT_IDLE_RETIRE_S = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """How many times a failed job is retried and how long each retry waits.

    The delay before retry number `attempt` (1 for the first retry) is
    `base_delay_s * factor ** (attempt - 1)`, capped at `max_delay_s`, then multiplied by a
    random factor in `[1 - jitter, 1 + jitter]` so that jobs that failed together do not all
    retry in the same instant.
    """

    max_retries: int = 3
    base_delay_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 3600.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        check_integer("max_retries", self.max_retries, minimum=0)
        check_seconds("base_delay_s", self.base_delay_s, allow_zero=True)
        check_number("factor", self.factor, low=1, high=1000)
        check_seconds("max_delay_s", self.max_delay_s, allow_zero=True)
        check_number("jitter", self.jitter, low=0, high=1)

    def delay_s(self, attempt: int) -> float:
        """Return the delay in seconds before retry number `attempt` (1-based)."""
        exponent = max(attempt - 1, 0)
        try:
            delay = min(self.max_delay_s, self.base_delay_s * self.factor**exponent)
        except OverflowError:
            delay = self.max_delay_s
        return delay * random.uniform(1 - self.jitter, 1 + self.jitter)


# Maximum throttle window: a week, in seconds.
MAX_THROTTLE_WINDOW_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Throttle:
    """At most `limit` job starts in any `window_s` seconds, shared by every Runner of the queue.

    Every start counts, retries and reclaimed jobs included. The window slides: a start made
    at time t keeps its place until t + window_s. Windows from one millisecond (0.001) to a
    week work.

    Example:
        Throttle(limit=10, window_s=1.0)  # at most 10 starts per second, across all Runners
    """

    limit: int
    window_s: float

    def __post_init__(self) -> None:
        check_integer("throttle limit", self.limit, minimum=1)
        check_number("throttle window_s", self.window_s, low=0.001, high=MAX_THROTTLE_WINDOW_S)

    @property
    def window_ms(self) -> int:
        return max(1, round(self.window_s * 1000))


@dataclass(frozen=True)
class QueueConfig:
    """The policy of one queue: how many of its jobs a Runner process runs at once, and retries.

    `concurrency` is per Runner process: three Runners with concurrency 8 run up to 24 jobs of
    the queue at once. `throttle`, when set, limits the job starts of all Runners together.
    """

    concurrency: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    throttle: Throttle | None = None

    def __post_init__(self) -> None:
        check_integer("concurrency", self.concurrency, minimum=1)
        if not isinstance(self.retry, RetryPolicy):
            raise ConfigurationError(f"retry must be a RetryPolicy, got {self.retry!r}")
        if self.throttle is not None and not isinstance(self.throttle, Throttle):
            raise ConfigurationError(
                f"throttle must be a Throttle or None, got {self.throttle!r}: for example "
                "Throttle(limit=10, window_s=1.0)"
            )


@dataclass(frozen=True)
class Queue:
    """A named static queue and its policy.

    Example:
        emails = Queue("emails", QueueConfig(concurrency=8))
    """

    name: str
    config: QueueConfig = field(default_factory=QueueConfig)

    def __post_init__(self) -> None:
        validate_queue_name(self.name)

    @property
    def concurrency(self) -> int:
        return self.config.concurrency


def validate_queue_name(name: object) -> str:
    """Return `name` if it is a valid queue name, else raise `ConfigurationError`."""
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise ConfigurationError(
            f"invalid queue name {name!r}: use 1 to 200 letters, digits or the characters "
            "_ . : # @ / - (no spaces or braces)"
        )
    return name


@dataclass(frozen=True)
class QueueFamily:
    """Queues created at run time under one prefix, for example one per tenant.

    Call the family with a key to get a member: `tenants("acme")` is the queue `tenants[acme]`.
    All members share `config`, and `config.concurrency` limits the jobs of the whole family
    that one Runner process runs at once, whatever their members. Runners serve the members
    with ready jobs in turn, one job per member per turn.

    A member with no enqueue for `idle_retire_s` seconds and no ready job is dropped from the
    family's member registry, which `client.stats()` counts. Enqueueing to it again brings it
    back.

    Example:
        tenants = QueueFamily("tenants", QueueConfig(concurrency=8))
        client.enqueue(tenants("acme"), SendInvoice(invoice_id=7))
    """

    prefix: str
    config: QueueConfig = field(default_factory=QueueConfig)
    idle_retire_s: float = DEFAULT_IDLE_RETIRE_S

    def __post_init__(self) -> None:
        validate_queue_name(self.prefix)
        if not isinstance(self.config, QueueConfig):
            raise ConfigurationError(
                f"config must be a QueueConfig, got {self.config!r}; use "
                f"QueueFamily({self.prefix!r}, QueueConfig(...))"
            )
        check_seconds("idle_retire_s", self.idle_retire_s)

    def __call__(self, key: str) -> FamilyMember:
        return FamilyMember(self, key)

    @property
    def name(self) -> str:
        """The name of the whole family, `prefix[*]`, as Runners and stats show it."""
        return member_name(self.prefix, WHOLE_FAMILY)

    @property
    def concurrency(self) -> int:
        return self.config.concurrency


@dataclass(frozen=True)
class FamilyMember:
    """One queue of a `QueueFamily`, named `prefix[key]`; build it with `family(key)`."""

    family: QueueFamily
    key: str

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _QUEUE_NAME.fullmatch(self.key):
            raise ConfigurationError(
                f"invalid member key {self.key!r} for queue family {self.family.prefix!r}: use "
                "1 to 200 letters, digits or the characters _ . : # @ / - (no spaces, braces "
                "or brackets)"
            )

    @property
    def name(self) -> str:
        return member_name(self.family.prefix, self.key)


# Anything a Client call accepts as a queue: a declaration, a family member, or a name such as
# "emails" or "tenants[acme]".
QueueRef = Queue | QueueFamily | FamilyMember | str


def member_name(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]"


def split_member_name(name: str) -> tuple[str, str] | None:
    """Return (prefix, key) when `name` is a member name such as "tenants[acme]", else None.

    The key of the name of a whole family, "tenants[*]", is `WHOLE_FAMILY`.
    """
    match = _MEMBER_NAME.fullmatch(name)
    return (match.group(1), match.group(2)) if match else None


def resolve_queue_name(queue: QueueRef) -> str:
    """Return the name of a queue reference, checking a name given as a string.

    Raises `ConfigurationError` for a string that is neither a queue name nor a member name.
    """
    if isinstance(queue, Queue | QueueFamily | FamilyMember):
        return queue.name
    if isinstance(queue, str) and split_member_name(queue) is not None:
        return queue
    return validate_queue_name(queue)
