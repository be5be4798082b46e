"""Record ids shaped like each CRM's.

Salesforce ids are 15 characters (3-character key prefix, then base-62) plus a
3-character case-safe suffix. The base-62 alphabet is in ASCII order, so for ids of one
object, string order equals creation order: `WHERE Id > '...'` slicing works as it does
in a real org.
"""

from __future__ import annotations

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_B62_INDEX = {c: i for i, c in enumerate(_B62)}

# Key prefixes of the objects the sandbox serves.
SF_PREFIX = {
    "Lead": "00Q",
    "Contact": "003",
    "Account": "001",
    "Task": "00T",
    "Event": "00U",
    "Campaign": "701",
    "CampaignMember": "00v",
    "User": "005",
    "LeadStatus": "01J",
    "PermissionSet": "0PS",
    "FieldPermissions": "01k",
    "PermissionSetAssignment": "0Pa",
    "CustomField": "00N",
}
PREFIX_OBJECT = {v: k for k, v in SF_PREFIX.items()}

# A pod-like segment after the prefix, as real ids carry ("00Q5g0000...").
_POD = "5g"


def _suffix(id15: str) -> str:
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX[bits])
    return "".join(out)


def sf_id(sobject: str, number: int) -> str:
    """The 18-character id of the `number`-th record of `sobject`."""
    digits = []
    n = number
    for _ in range(10):
        digits.append(_B62[n % 62])
        n //= 62
    id15 = SF_PREFIX[sobject] + _POD + "".join(reversed(digits))
    return id15 + _suffix(id15)


def sf_number(sobject: str, record_id: str) -> int | None:
    """The record number an id encodes, or None if it is not an id of `sobject`.

    Accepts the 15- and the 18-character form, as Salesforce does.
    """
    if len(record_id) not in (15, 18) or not record_id.startswith(SF_PREFIX[sobject] + _POD):
        return None
    n = 0
    for ch in record_id[5:15]:
        idx = _B62_INDEX.get(ch)
        if idx is None:
            return None
        n = n * 62 + idx
    if len(record_id) == 18 and record_id[15:] != _suffix(record_id[:15]):
        return None
    return n


def looks_like_sf_id(text: str) -> bool:
    """True for a string shaped like any Salesforce id (used to label request paths)."""
    return len(text) in (15, 18) and text[:3] in PREFIX_OBJECT and text.isalnum()
