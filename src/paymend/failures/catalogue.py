"""The unified catalogue (catalogue.yaml), validated on load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from paymend.datafiles import DataFileError, line_of, parse_duration, read_yaml, validate_model
from paymend.domain.failure import Action, Kind

HERE = Path(__file__).parent
Duration = Annotated[float, BeforeValidator(parse_duration)]


class Retry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max: int = Field(ge=0, le=10)
    base: Duration = 0.0
    cap: Duration = 0.0


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    category: str
    action: Action
    retry: Retry
    failover: bool
    health: bool
    alert_ops: bool = False
    # the code customers are shown instead of this one (its text and its help page), so
    # a fraud or lost-card block reads as a plain decline; the merchant sees the real code
    shown_as: str | None = None
    description: str = Field(min_length=1)

    @model_validator(mode="after")
    def _business_never_hurts_health(self) -> Entry:
        if self.kind is Kind.BUSINESS and self.health:
            raise ValueError("a business failure cannot count against a channel's health")
        return self


class CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    categories: list[str] = Field(min_length=1)
    codes: dict[str, Entry] = Field(min_length=1)


class Catalogue:
    """Unified codes by name. `DEFAULT` is what an unmapped provider code becomes."""

    DEFAULT = "unrecognized_response"

    def __init__(self, entries: dict[str, Entry], path: str) -> None:
        self.entries = entries
        self.path = path

    def __contains__(self, code: object) -> bool:
        return code in self.entries

    def __getitem__(self, code: str) -> Entry:
        return self.entries[code]

    def codes(self) -> list[str]:
        return list(self.entries)


def load_catalogue(path: Path | None = None) -> Catalogue:
    path = path or HERE / "catalogue.yaml"
    data, node = read_yaml(path)
    parsed = validate_model(CatalogueFile, data, node, str(path))
    for code, entry in parsed.codes.items():
        if entry.category not in parsed.categories:
            raise DataFileError(
                str(path),
                line_of(node, ["codes", code, "category"]),
                f"codes.{code}.category: unknown category '{entry.category}' "
                f"(known: {', '.join(parsed.categories)})",
            )
        if entry.category == "risk" and entry.shown_as is None:
            raise DataFileError(
                str(path),
                line_of(node, ["codes", code]),
                f"codes.{code}: a risk block must be shown to customers as another code "
                "(shown_as: generic_decline), never under its own name",
            )
        if entry.shown_as is not None and (
            entry.shown_as not in parsed.codes or parsed.codes[entry.shown_as].shown_as
        ):
            raise DataFileError(
                str(path),
                line_of(node, ["codes", code, "shown_as"]),
                f"codes.{code}.shown_as: '{entry.shown_as}' must be a code of the catalogue "
                "that customers are shown as itself",
            )
    if Catalogue.DEFAULT not in parsed.codes:
        raise DataFileError(str(path), None, f"the catalogue must define '{Catalogue.DEFAULT}'")
    return Catalogue(parsed.codes, str(path))
