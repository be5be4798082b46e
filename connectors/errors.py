"""The connector error hierarchy: what a caller may retry, what stops a run.

`connectors.retry.classify` is the one place that turns a client library's exception
into one of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ConnectorError(Exception):
    """Base error: a CRM call failed. Messages never contain credentials.

    `context` is the `context` object of a HubSpot error answer (e.g. the ids it names),
    when it had one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.context = context


class RetriableError(ConnectorError):
    """Worth another attempt: 429, 5xx, connection resets, timeouts."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        transport: bool = False,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after
        # True when the request may have reached the CRM without us seeing the answer.
        self.transport = transport


class FatalError(ConnectorError):
    """Retrying cannot help: a validation error, a missing object, a bad mapping."""


class AuthExpired(FatalError):
    """401: the token or session is no longer valid; refreshed once, then fatal."""


class DailyLimitExceeded(FatalError):
    """The CRM's daily API budget is spent: stop the run cleanly, do not spin."""


class RunBudgetSpent(DailyLimitExceeded):
    """This run has used its configured share of the CRM's daily API budget.

    Nothing more is sent, so that other runs and integrations of the account keep the
    rest; the run stops as on a spent daily limit, with its cursors kept.
    """


class BatchRejected(FatalError):
    """A batch refused as a whole for one bad input (HubSpot validates the whole batch).

    The caller splits the batch to find the record at fault; a batch of one record
    refused is that record's failure.
    """


class UnexpectedError(ConnectorError):
    """A client call failed in a way no rule knows: not retried here; a run may try again."""


class AmbiguousWriteError(ConnectorError):
    """A create may or may not have landed; look it up before sending it again."""


class RepeatedPageToken(FatalError):
    """A paginator saw the same page token twice: the server would loop forever."""


class MappingError(FatalError):
    """A mapping file is invalid, or names a property the CRM does not have."""
