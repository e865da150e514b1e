"""The FAQ page's questions and answers: a data file the merchant edits
(`customers.faq`; the shipped `faq.yaml` otherwise), validated on load so a mistake
refuses to start and names its file and line."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from paymend.datafiles import load_model

SHIPPED = Path(__file__).with_name("faq.yaml")
LOCALES = ("en", "zh-CN")


def _texts(value: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(value) - set(LOCALES))
    if unknown:
        raise ValueError(f"unknown locale {', '.join(unknown)} (known: {', '.join(LOCALES)})")
    if "en" not in value:
        raise ValueError("an English text is required ('en')")
    if any(not t.strip() for t in value.values()):
        raise ValueError("a text must not be empty")
    return value


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")  # its anchor on the page
    question: dict[str, str]
    answer: dict[str, str]

    _question = field_validator("question")(_texts)
    _answer = field_validator("answer")(_texts)

    def ask(self, locale: str) -> tuple[str, str]:
        return self.question.get(locale, self.question["en"]), self.answer.get(
            locale, self.answer["en"]
        )


class FaqFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(1, ge=1, le=1)
    questions: list[Question] = Field(min_length=1, max_length=200)


def load_faq(path: Path | None = None) -> FaqFile:
    """The FAQ at `path` (the shipped one by default); DataFileError names the line."""
    return load_model(FaqFile, path or SHIPPED)
