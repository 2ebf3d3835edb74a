"""oxanus_sync: background jobs for synchronous Python, backed by Redis."""

from oxanus_sync.client import Client
from oxanus_sync.config import Config, RunnerSettings
from oxanus_sync.context import Context, JobMeta
from oxanus_sync.errors import (
    ConfigurationError,
    EnqueueError,
    JobCancelled,
    JobTimeout,
    NotReplicatedError,
    OxanusError,
    RedisUnavailableError,
    RetryLater,
    SerializationError,
)
from oxanus_sync.queue import (
    FamilyMember,
    Queue,
    QueueConfig,
    QueueFamily,
    RetryPolicy,
    Throttle,
)
from oxanus_sync.runner import DrainTimeoutError, Runner, RunnerStats
from oxanus_sync.storage.records import (
    DeadJob,
    FamilyCounts,
    ProcessRecord,
    QueueCounts,
    ThrottleState,
)
from oxanus_sync.unique import Enqueued, EnqueueOutcome
from oxanus_sync.worker import Worker

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Config",
    "ConfigurationError",
    "Context",
    "DeadJob",
    "DrainTimeoutError",
    "EnqueueError",
    "EnqueueOutcome",
    "Enqueued",
    "FamilyCounts",
    "FamilyMember",
    "JobCancelled",
    "JobMeta",
    "JobTimeout",
    "NotReplicatedError",
    "OxanusError",
    "ProcessRecord",
    "Queue",
    "QueueConfig",
    "QueueCounts",
    "QueueFamily",
    "RedisUnavailableError",
    "RetryLater",
    "RetryPolicy",
    "Runner",
    "RunnerSettings",
    "RunnerStats",
    "SerializationError",
    "Throttle",
    "ThrottleState",
    "Worker",
]
