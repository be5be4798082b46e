"""`check_configuration`: validate the model and both mappings before a run costs anything.

Reads local files only (no CRM, no store, no Prefect API), so it can run as a preflight
anywhere and in CI. Besides each file on its own, it checks the model against the
mappings: a property or activity attribute no mapping reads can never match.
"""

from __future__ import annotations

from pathlib import Path

from connectors.errors import MappingError
from connectors.mapping import MAPPINGS_DIR, Mapping, load_mapping
from flows.settings import Settings
from scoring.model import ModelError, ScoringModel, parse_model
from scoring.records import Crm
from scoring.yaml_lines import MAX_BYTES


def mapping_path(settings: Settings, crm: Crm) -> Path:
    """The mapping file the settings name for `crm`, or the shipped one."""
    given = settings.hubspot_mapping if crm is Crm.HUBSPOT else settings.salesforce_mapping
    return given or MAPPINGS_DIR / f"{crm.value}.yaml"


def load_model_file(
    path: Path,
    *,
    contact_properties: set[str] | None = None,
    activity_attributes: set[str] | None = None,
) -> ScoringModel:
    """Read and validate a model file; every problem (unreadable too) is a `ModelError`."""
    try:
        with path.open("rb") as handle:
            # One byte past the limit is enough for the reader to refuse the file.
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ModelError(
            str(path), [(None, "(file)", f"cannot read the model: {exc.strerror or exc}")]
        ) from None
    return parse_model(
        data,
        str(path),
        contact_properties=contact_properties,
        activity_attributes=activity_attributes,
    )


def check_configuration(settings: Settings) -> list[str]:
    """Every problem in the model file and both mappings, as `file:line: problem` lines.

    Empty when all is well. Makes no network request.
    """
    problems: list[str] = []
    mappings: list[Mapping] = []
    for crm in Crm:
        try:
            mappings.append(load_mapping(mapping_path(settings, crm), crm=crm))
        except MappingError as exc:
            problems.extend(str(exc).splitlines())
    properties: set[str] | None = None
    attributes: set[str] | None = None
    # Cross-checked only against mappings that all loaded: a property declared in a
    # broken one would otherwise be reported as unknown too.
    if len(mappings) == len(Crm):
        properties = {name for m in mappings for source in m.contacts for name in source.properties}
        attributes = {
            name
            for m in mappings
            for rule in m.activities
            for name in (*rule.set, *rule.attributes)
        }
    try:
        load_model_file(
            settings.model_path, contact_properties=properties, activity_attributes=attributes
        )
    except ModelError as exc:
        problems.extend(str(exc).splitlines())
    return problems
