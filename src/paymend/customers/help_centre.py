"""The help centre, `/help`: the articles grouped by what the customer can do, a search
over both languages, the FAQ, and an article per public failure code with "did this
help?". The article's route itself is the API's documented `/help/{code}`
(api/failures.py), which hands the page to `article`."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from paymend.console.web import FormRefused, read_form
from paymend.customers.i18n import translate
from paymend.customers.web import locale_of, pages_of, render, runtime_of
from paymend.domain.errors import PaymendError
from paymend.engine import feedback

router = APIRouter(include_in_schema=False)
MAX_QUERY = 100


@router.get("/help")
async def index(request: Request) -> Response:
    help_ = pages_of(request).help
    query = request.query_params.get("q", "").strip()[:MAX_QUERY]
    found = help_.search(query) if query else None
    shared = help_.shared_titles(locale_of(request))
    return render(
        request, "help.html", groups=help_.grouped(), query=query, found=found, shared=shared
    )


@router.get("/help/faq")
async def faq(request: Request) -> Response:
    locale = locale_of(request)
    questions = [(q.id, *q.ask(locale)) for q in pages_of(request).faq.questions]
    return render(request, "faq.html", questions=questions)


def article(request: Request, code: str, locale: str) -> Response:
    """The article of a public `code` (the caller redirects other codes), in `locale`."""
    help_ = pages_of(request).help
    found = help_.articles[code]
    sent = request.query_params.get("sent") == "1"
    return render(
        request,
        "article.html",
        locale=locale,
        article=found,
        message=found.text(locale),
        extra=found.extra.get(locale) or found.extra.get("en"),
        sent=sent,
        refused=None,
    )


@router.post("/help/{code}/feedback")
async def article_feedback(request: Request, code: str) -> Response:
    """ "Did this help?": yes or no, and a few words, about the article of `code`."""
    help_ = pages_of(request).help
    locale = locale_of(request)
    if code not in help_.articles:
        problem = translate(locale, "help.not_found")
        return render(request, "link.html", 404, problem=problem, heading=problem)
    try:
        form = await read_form(request)
        helpful = {"yes": True, "no": False}.get(form.get("helpful", ""))
        said = feedback.Said(
            source="help",
            step="help_article",
            helpful=helpful,
            text=form.get("text", ""),
            locale=locale,
            failure_code=code,
        )
        await feedback.record(runtime_of(request).service, said)
    except (FormRefused, PaymendError) as exc:
        status = exc.status
        found = help_.articles[code]
        return render(
            request,
            "article.html",
            status,
            locale=locale,
            article=found,
            message=found.text(locale),
            extra=found.extra.get(locale) or found.extra.get("en"),
            sent=False,
            refused=exc.message,
        )
    return RedirectResponse(f"/help/{code}?lang={quote(locale)}&sent=1", status_code=303)
