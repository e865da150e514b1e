"""Provider code maps (providers/*.yaml): raw codes -> unified codes, each with its source.

Validated against the catalogue on load. A duplicate (field, code), an unknown unified
code, advice or source refuses to load and names the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from paymend.datafiles import DataFileError, line_of, parse_duration, read_yaml, validate_model
from paymend.domain.failure import Advice
from paymend.failures.catalogue import Catalogue

HERE = Path(__file__).parent / "providers"
TRANSPORT = "transport"
Duration = Annotated[float, BeforeValidator(parse_duration)]
Operation = Annotated[str, Field(pattern="^(pay|query|refund|close)$")]


class CodeEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1)
    field: str = Field(min_length=1)
    unified: str
    description: str = ""
    source: str
    visa_category: int | None = Field(None, ge=1, le=4)
    operations: list[Operation] | None = None


class AdviceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1)
    field: str = Field(min_length=1)
    advice: Advice
    retry_after: Duration | None = None
    description: str = ""
    source: str


class MapFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(pattern="^[a-z][a-z0-9_]*$")
    sources: dict[str, str] = Field(min_length=1)
    codes: list[CodeEntry] = Field(default_factory=list)
    advice: list[AdviceEntry] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Mapped:
    """One map entry with the provider it belongs to and its resolved source URL."""

    provider: str
    entry: CodeEntry
    source_url: str


@dataclass(frozen=True, slots=True)
class MappedAdvice:
    provider: str
    entry: AdviceEntry
    source_url: str


@dataclass
class ProviderMap:
    provider: str
    path: str
    codes: dict[tuple[str, str], Mapped] = field(default_factory=dict)
    by_code: dict[str, Mapped] = field(default_factory=dict)
    by_code_folded: dict[str, Mapped] = field(default_factory=dict)
    advice: dict[str, MappedAdvice] = field(default_factory=dict)

    def find(self, code: str, field_name: str | None = None) -> Mapped | None:
        """The entry for `code` (in `field_name` if given; the file's first otherwise)."""
        if field_name is not None:
            hit = self.codes.get((field_name, code))
            if hit is not None:
                return hit
        return self.by_code.get(code) or self.by_code_folded.get(code.casefold())


def load_map(path: Path, catalogue: Catalogue) -> ProviderMap:
    data, node = read_yaml(path)
    parsed = validate_model(MapFile, data, node, str(path))
    pmap = ProviderMap(parsed.provider, str(path))
    for i, entry in enumerate(parsed.codes):
        where = line_of(node, ["codes", i])
        if entry.unified not in catalogue:
            raise DataFileError(
                str(path), where, f"codes[{i}]: unknown unified code '{entry.unified}'"
            )
        if entry.source not in parsed.sources:
            raise DataFileError(str(path), where, f"codes[{i}]: unknown source '{entry.source}'")
        key = (entry.field, entry.code)
        if key in pmap.codes:
            raise DataFileError(
                str(path), where, f"codes[{i}]: duplicate code '{entry.code}' in '{entry.field}'"
            )
        mapped = Mapped(parsed.provider, entry, parsed.sources[entry.source])
        pmap.codes[key] = mapped
        pmap.by_code.setdefault(entry.code, mapped)
        pmap.by_code_folded.setdefault(entry.code.casefold(), mapped)
    for i, adv in enumerate(parsed.advice):
        where = line_of(node, ["advice", i])
        if adv.source not in parsed.sources:
            raise DataFileError(str(path), where, f"advice[{i}]: unknown source '{adv.source}'")
        if adv.code in pmap.advice:
            raise DataFileError(str(path), where, f"advice[{i}]: duplicate advice '{adv.code}'")
        pmap.advice[adv.code] = MappedAdvice(parsed.provider, adv, parsed.sources[adv.source])
    return pmap


def load_maps(catalogue: Catalogue, folder: Path | None = None) -> dict[str, ProviderMap]:
    maps: dict[str, ProviderMap] = {}
    for path in sorted((folder or HERE).glob("*.yaml")):
        pmap = load_map(path, catalogue)
        if pmap.provider in maps:
            raise DataFileError(
                str(path),
                1,
                f"provider '{pmap.provider}' is already mapped in {maps[pmap.provider].path}",
            )
        maps[pmap.provider] = pmap
    return maps
