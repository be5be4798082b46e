"""Large Salesforce pulls through Bulk API 2.0 query jobs (simple-salesforce's `bulk2`).

A job costs a create, a few status reads and one request per results page of up to
`page_rows` CSV rows, where REST query pages hold 2,000: a 200,000-row object is about
ten requests instead of a hundred. Every request goes through the connector's session
(auth renewal, throttle, retries), as REST queries do.

The rows come back as REST would give them to the translation: a parent's field
(`Owner.Email`) as a nested record, an empty field as null. Values stay text; the
translation reads text for every field type (HubSpot sends nothing else).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from typing import Any

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceOperationError

from connectors.errors import RetriableError

log = logging.getLogger(__name__)


def bulk_rows(
    api: Salesforce,
    obj: str,
    soql: str,
    *,
    include_deleted: bool,
    page_rows: int,
    poll_s: float,
) -> Iterator[dict[str, Any]]:
    """Every row `soql` selects, read through one query job (queryAll with
    `include_deleted`). Bulk API 2.0 takes no ORDER BY without losing its chunking: the
    rows come in no particular order, which a stream's cursor (its highest record time,
    known only at the end of the pull) does not need."""
    job = getattr(api.bulk2, obj)
    run = job.query_all if include_deleted else job.query
    log.info("Salesforce %s: reading through a Bulk API 2.0 query job", obj)
    try:
        for text in run(soql, max_records=page_rows, wait=poll_s):
            for row in csv.DictReader(io.StringIO(str(text))):
                yield as_rest_record(row)
    except SalesforceOperationError as exc:
        # The job ended Failed or Aborted (the library's message quotes the job's own
        # errorMessage, no credentials): the pull fails and is tried again as a whole.
        raise RetriableError(f"Salesforce {obj}: Bulk API 2.0 query job: {exc}") from None


def as_rest_record(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row as a REST query record: `Parent.Field` columns nested under
    `Parent`, empty fields null (a parent with no field set is null, as REST has it)."""
    record: dict[str, Any] = {}
    for column, text in row.items():
        value = text if text != "" else None
        parent, dot, name = column.partition(".")
        if not dot:
            record[column] = value
            continue
        nested = record.setdefault(parent, {})
        if nested is not None:
            nested[name] = value
    for key, value in list(record.items()):
        if isinstance(value, dict) and all(v is None for v in value.values()):
            record[key] = None
    return record
