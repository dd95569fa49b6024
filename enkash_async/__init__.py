"""enkash_async: an asyncio client for EnKash's Customer APIs.

async with EnkashClient(base_url="https://…", token="…") as client:
    customer = await client.customers.create(CustomerCreate(...))
    async for customer in client.customers.search(CustomerSearch(...)):
        ...
"""

from enkash_async._changes import customer_changes
from enkash_async._customers import UpsertResult
from enkash_async._hooks import (
    CallEnded,
    CallStarted,
    Hooks,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    RowDone,
)
from enkash_async._limits import Limiter, RequestLimiter, RequestSlot
from enkash_async._log import configure_from_env as _configure_logging
from enkash_async._otel import OtelHooks
from enkash_async._pagination import SearchIterator
from enkash_async._reply import Reply
from enkash_async._retry import RetryEvent, RetryPolicy
from enkash_async._transport import AiohttpTransport, Timeouts, Transport
from enkash_async._unset import UNSET
from enkash_async._version import __version__
from enkash_async.auth import PasswordCredentials
from enkash_async.client import ClientStats, Customers, EnkashClient
from enkash_async.errors import (
    AmbiguousCreateError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectError,
    EnkashError,
    FieldError,
    LoginError,
    NotFoundError,
    PaginationDriftWarning,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeout,
    RequestTimeoutError,
    ServerError,
    TLSError,
    TransportError,
    UnexpectedResponseError,
    UsageError,
    ValidationError,
)
from enkash_async.models import (
    CreateResult,
    Customer,
    CustomerCreate,
    CustomerLevel,
    CustomerSearch,
    CustomerSource,
    CustomerStatus,
    CustomerUpdate,
    ErrorType,
    KeyContact,
    KeyContactCreate,
    Page,
    Reminder,
    ReminderCreate,
    ReminderType,
    SortDirection,
)

__all__ = [
    "UNSET",
    "APIError",
    "AiohttpTransport",
    "AmbiguousCreateError",
    "AuthenticationError",
    "BadRequestError",
    "CallEnded",
    "CallStarted",
    "ClientStats",
    "ConnectError",
    "CreateResult",
    "Customer",
    "CustomerCreate",
    "CustomerLevel",
    "CustomerSearch",
    "CustomerSource",
    "CustomerStatus",
    "CustomerUpdate",
    "Customers",
    "EnkashClient",
    "EnkashError",
    "ErrorType",
    "FieldError",
    "Hooks",
    "KeyContact",
    "KeyContactCreate",
    "Limiter",
    "LoginError",
    "NotFoundError",
    "OtelHooks",
    "Page",
    "PaginationDriftWarning",
    "PaginationError",
    "PasswordCredentials",
    "PermissionDeniedError",
    "RateLimitError",
    "Reminder",
    "ReminderCreate",
    "ReminderType",
    "Reply",
    "RequestLimiter",
    "RequestSent",
    "RequestSlot",
    "RequestTimeout",
    "RequestTimeoutError",
    "ResponseReceived",
    "RetryEvent",
    "RetryPolicy",
    "RetryScheduled",
    "RowDone",
    "SearchIterator",
    "ServerError",
    "SortDirection",
    "TLSError",
    "Timeouts",
    "Transport",
    "TransportError",
    "UnexpectedResponseError",
    "UpsertResult",
    "UsageError",
    "ValidationError",
    "__version__",
    "customer_changes",
]

_configure_logging()  # ENKASH_LOG=info|debug|body, for people who set up no logging
