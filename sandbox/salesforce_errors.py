"""Salesforce's error shape, shared by the org's operations and its routes."""

from __future__ import annotations

from typing import Any


class SalesforceError(Exception):
    """An error as Salesforce reports it: HTTP status, errorCode, message, fields."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []

    def body(self) -> list[dict[str, Any]]:
        out: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            out["fields"] = self.fields
        return [out]

    def record_error(self) -> dict[str, Any]:
        """The form used inside sObject Collections results."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def no_such_column(name: str, sobject: str) -> SalesforceError:
    """A write naming a field the object lacks, or one the user cannot see: field-level
    security makes a hidden field look absent, as the real API does."""
    return SalesforceError(
        400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", [name]
    )


def not_writable(name: str, creating: bool) -> SalesforceError:
    verb = "create" if creating else "update"
    return SalesforceError(
        400,
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to {verb} fields: {name}. Please check the security settings of this field "
        "and verify that it is read/write for your profile or permission set.",
        [name],
    )
