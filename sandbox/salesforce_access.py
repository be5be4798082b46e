"""Field-level access of the integration user, and the setup records that grant it.

As in a real org, a field the user cannot read does not exist for them: describe leaves
it out, SOQL answers INVALID_FIELD. A field is restricted when the org hides it from the
user (`OrgOptions.hidden_fields`) or when it was just created through the Tooling API
(a new field grants no access until someone grants it). Access is granted the documented
way: a PermissionSet, a FieldPermissions record on it for the field, and a
PermissionSetAssignment of that set to the user.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.clock import now_ms
from sandbox.ids import sf_id, sf_number
from sandbox.salesforce_errors import SalesforceError, no_such_column, not_writable
from sandbox.salesforce_schema import SETUP_OBJECTS

Row = dict[str, Any]
# Object name -> the field names it has (for FieldPermissions.Field checks).
FieldsOf = Callable[[str], dict[str, str]]

# A developer name: a letter, then letters, digits and single underscores.
_DEVELOPER_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)$")
_CREATE_FIELDS = {
    "PermissionSet": ("Name", "Label", "Description"),
    "FieldPermissions": ("ParentId", "SobjectType", "Field", "PermissionsRead", "PermissionsEdit"),
    "PermissionSetAssignment": ("AssigneeId", "PermissionSetId"),
}


def _to18(sobject: str, rid: Any) -> str | None:
    """The 18-character form of an id of `sobject` (Salesforce takes both forms)."""
    if not isinstance(rid, str):
        return None
    n = sf_number(sobject, rid)
    return None if n is None else sf_id(sobject, n)


def _duplicate(field: str, rid: str) -> SalesforceError:
    return SalesforceError(
        400,
        "DUPLICATE_VALUE",
        f"duplicate value found: {field} duplicates value on record with id: {rid}",
        [field],
    )


def _required(names: list[str]) -> SalesforceError:
    return SalesforceError(
        400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(names)}]", names
    )


class FieldAccess:
    """Which fields the integration user may read and edit, and the grant records."""

    def __init__(self, user_id: str, restricted: Iterable[str], is_user: Callable[[str], bool]):
        self.user_id = user_id
        # "Object.Field" keys the user needs a grant for (compared without case).
        self.restricted: set[str] = {k.casefold() for k in restricted}
        self.is_user = is_user
        self.records: dict[str, dict[str, Row]] = {obj: {} for obj in SETUP_OBJECTS}

    # -- access ---------------------------------------------------------------------------

    def restrict(self, sobject: str, name: str) -> None:
        self.restricted.add(f"{sobject}.{name}".casefold())

    def readable(self, sobject: str, name: str) -> bool:
        key = f"{sobject}.{name}".casefold()
        return key not in self.restricted or self._grants(key)[0]

    def editable(self, sobject: str, name: str) -> bool:
        key = f"{sobject}.{name}".casefold()
        return key not in self.restricted or self._grants(key)[1]

    def _grants(self, key: str) -> tuple[bool, bool]:
        """(read, edit) granted to the user by the permission sets assigned to them."""
        sets = {
            a["PermissionSetId"]
            for a in self.records["PermissionSetAssignment"].values()
            if a["AssigneeId"] == self.user_id
        }
        read = edit = False
        for perm in self.records["FieldPermissions"].values():
            if perm["ParentId"] in sets and perm["Field"].casefold() == key:
                read = read or perm["PermissionsRead"]
                edit = edit or perm["PermissionsEdit"]
        return read, read and edit

    # -- records --------------------------------------------------------------------------

    def rows(self, sobject: str) -> list[Row]:
        return list(self.records[sobject].values())

    def lookup(self, sobject: str, rid: str | None) -> Row | None:
        key = _to18(sobject, rid)
        return None if key is None else self.records[sobject].get(key)

    def prepare_create(
        self, sobject: str, values: dict[str, Any], fields_of: FieldsOf
    ) -> Callable[[], str]:
        """Validate one setup record; return the closure that stores it (-> new id)."""
        allowed = {n.casefold(): n for n in _CREATE_FIELDS[sobject]}
        given: dict[str, Any] = {}
        for name, value in values.items():
            if name.casefold() in ("attributes", "id"):
                continue
            canonical = allowed.get(name.casefold())
            if canonical is None:
                raise no_such_column(name, sobject)
            given[canonical] = value
        check = {
            "PermissionSet": self._permission_set,
            "FieldPermissions": lambda g: self._field_permission(g, fields_of),
            "PermissionSetAssignment": self._assignment,
        }[sobject]
        row = check(given)

        def create() -> str:
            stamp = now_ms()
            rid = sf_id(sobject, len(self.records[sobject]))  # records are never deleted
            self.records[sobject][rid] = {
                "Id": rid,
                **row,
                "CreatedDate": stamp,
                "SystemModstamp": stamp,
            }
            return rid

        return create

    def prepare_update(self, sobject: str, rid: str, values: dict[str, Any]) -> Callable[[], None]:
        """Validate an update of a FieldPermissions record (its two flags); return the
        closure that applies it."""
        row = self.lookup(sobject, rid)
        if row is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        flags = {"permissionsread": "PermissionsRead", "permissionsedit": "PermissionsEdit"}
        given: dict[str, Any] = {}
        for name, value in values.items():
            if name.casefold() in ("attributes", "id"):
                continue
            canonical = flags.get(name.casefold()) if sobject == "FieldPermissions" else None
            if canonical is None:
                known = {n.casefold(): n for n in _CREATE_FIELDS[sobject]}
                if name.casefold() in known:  # set when the record is created, not after
                    raise not_writable(known[name.casefold()], creating=False)
                raise no_such_column(name, sobject)
            if not isinstance(value, bool):
                raise SalesforceError(400, "JSON_PARSER_ERROR", f"{canonical} is a boolean")
            given[canonical] = value
        merged = {**row, **given}
        if merged.get("PermissionsEdit") and not merged.get("PermissionsRead"):
            raise _edit_needs_read()

        def apply() -> None:
            row.update(given)
            row["SystemModstamp"] = now_ms()

        return apply

    def _permission_set(self, given: dict[str, Any]) -> Row:
        missing = [n for n in ("Name", "Label") if not given.get(n)]
        if missing:
            raise _required(missing)
        name = given["Name"]
        if not isinstance(name, str) or not _DEVELOPER_NAME.match(name) or len(name) > 80:
            raise SalesforceError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "The API Name can only contain underscores and alphanumeric characters. It "
                "must be unique, begin with a letter, not include spaces, not end with an "
                "underscore, and not contain two consecutive underscores.",
                ["Name"],
            )
        for other in self.records["PermissionSet"].values():
            if other["Name"].casefold() == name.casefold():
                raise _duplicate("Name", other["Id"])
        return {
            "Name": name,
            "Label": str(given["Label"]),
            "Description": given.get("Description"),
            "IsOwnedByProfile": False,
        }

    def _field_permission(self, given: dict[str, Any], fields_of: FieldsOf) -> Row:
        missing = [n for n in ("ParentId", "SobjectType", "Field") if not given.get(n)]
        if missing:
            raise _required(missing)
        parent = self.lookup("PermissionSet", given["ParentId"])
        if parent is None:
            raise SalesforceError(
                400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["ParentId"]
            )
        sobject, field = str(given["SobjectType"]), str(given["Field"])
        fields = fields_of(sobject)
        if not fields:
            raise _bad_picklist("SobjectType", sobject)
        obj, _, name = field.partition(".")
        canonical = next((n for n in fields if n.casefold() == name.casefold()), None)
        if obj.casefold() != sobject.casefold() or canonical is None:
            raise _bad_picklist("Field", field)
        read, edit = given.get("PermissionsRead", False), given.get("PermissionsEdit", False)
        if not isinstance(read, bool) or not isinstance(edit, bool):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "PermissionsRead and PermissionsEdit are booleans"
            )
        if edit and not read:
            raise _edit_needs_read()
        key = f"{sobject}.{canonical}"
        for other in self.records["FieldPermissions"].values():
            if other["ParentId"] == parent["Id"] and other["Field"].casefold() == key.casefold():
                raise _duplicate("Field", other["Id"])
        return {
            "ParentId": parent["Id"],
            "SobjectType": sobject,
            "Field": key,
            "PermissionsRead": read,
            "PermissionsEdit": edit,
        }

    def _assignment(self, given: dict[str, Any]) -> Row:
        missing = [n for n in ("AssigneeId", "PermissionSetId") if not given.get(n)]
        if missing:
            raise _required(missing)
        assignee = _to18("User", given["AssigneeId"])
        parent = self.lookup("PermissionSet", given["PermissionSetId"])
        if assignee is None or not self.is_user(assignee):
            raise SalesforceError(
                400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["AssigneeId"]
            )
        if parent is None:
            raise SalesforceError(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                ["PermissionSetId"],
            )
        for other in self.records["PermissionSetAssignment"].values():
            if other["AssigneeId"] == assignee and other["PermissionSetId"] == parent["Id"]:
                # The documented answer names neither field nor record.
                raise SalesforceError(
                    400,
                    "DUPLICATE_VALUE",
                    "duplicate value found: <unknown> duplicates value on record with id: "
                    "<unknown>",
                )
        return {"AssigneeId": assignee, "PermissionSetId": parent["Id"]}


def _edit_needs_read() -> SalesforceError:
    # FieldPermissions reference: PermissionsEdit "Requires PermissionsRead for the same
    # field to be true".
    return SalesforceError(
        400,
        "FIELD_INTEGRITY_EXCEPTION",
        "Permission Edit requires Permission Read for the same field",
        ["PermissionsRead"],
    )


def _bad_picklist(field: str, value: str) -> SalesforceError:
    return SalesforceError(
        400,
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        f"{field}: bad value for restricted picklist field: {value}",
        [field],
    )
