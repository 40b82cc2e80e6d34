"""What the services' pages share: templates, static files, the page strings, the language.

Each service keeps its own pages in ``services/<name>/web/`` (``templates/``, ``static/``,
``strings.json``) and serves them itself; the look and the small browser modules every page
uses (sign-in, language, API calls) live once, here, in ``shared/web/``, and so do the words
for every error code a service answers (``codes.json``, ``code_<code>``), which a page that
says refusals by their code takes with its own (:func:`strings`, ``codes=True``). No build
step: the browser loads plain ES modules and one stylesheet.
"""

from __future__ import annotations

import json
import secrets
from functools import cache
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader

from shared.settings import Settings

HERE = Path(__file__).parent
Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
LANG_COOKIE = "sixstep_lang"


def templates(web_dir: Path) -> Jinja2Templates:
    """Templates from the service's ``web/templates``, then the shared ones (``base.html``)."""
    out = Jinja2Templates(directory=str(web_dir / "templates"))
    out.env.loader = ChoiceLoader([FileSystemLoader(str(web_dir / "templates")),
                                   FileSystemLoader(str(HERE / "templates"))])
    out.env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}
    return out


CODES = HERE / "codes.json"
"""The words for every error code the services answer, ``code_<code>``, in zh and en: the one
place they are written (``tests/unit/test_counter_page_words.py`` holds them to the codes)."""


def _words(path: Path) -> dict[str, dict[str, str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    missing = set(data["zh"]) ^ set(data["en"])
    if missing:
        raise ValueError(f"{path}: keys not in both languages: {sorted(missing)}")
    return data


@cache
def strings(path: Path, *, codes: bool = False) -> dict[str, dict[str, str]]:
    """A page's words, ``{"zh": {...}, "en": {...}}``; every key is in both languages.
    ``codes``: with the words of every error code (:data:`CODES`), for a page that says a
    refusal by its code; a page's own file holds none of them (a copy would drift)."""
    data = _words(path)
    copied = sorted(k for k in data["zh"] if k.startswith("code_"))
    if copied and path != CODES:
        raise ValueError(f"{path}: error codes' words belong in {CODES}: {copied}")
    if not codes:
        return data
    shared = _words(CODES)
    return {lang: {**data[lang], **shared[lang]} for lang in LANGS}


def language(request: Request) -> Lang:
    """``?lang=`` first, then the cookie the language switch sets, else Chinese."""
    for value in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value in LANGS:
            return value  # type: ignore[return-value]
    return "zh"


def mount_static(app: FastAPI, service: str, web_dir: Path) -> None:
    """``/ui/shared/*`` (the look, sign-in, language, API calls) and ``/ui/<service>/*``."""
    app.mount("/ui/shared", StaticFiles(directory=HERE / "static"), name="ui-shared")
    app.mount(f"/ui/{service}", StaticFiles(directory=web_dir / "static"),
              name=f"ui-{service}")


def sign_in_context(settings: Settings | None) -> dict[str, Any]:
    """How a staff page signs in: ``oidc`` (issuer, client id, scope, embedded in the page
    for ``/ui/shared/oidc.js``) when the center has an identity provider; ``dev_tokens``
    whether a pasted token is offered too (always without a provider; with one, only in
    development)."""
    if settings is None or settings.oidc_issuer is None:
        return {"oidc": None, "dev_tokens": True}
    oidc = {"issuer": settings.oidc_issuer, "client_id": settings.oidc_client_id,
            "scope": settings.oidc_scope}
    return {"oidc": oidc, "dev_tokens": settings.environment == "development"}


def page_context(request: Request, words: dict[str, dict[str, str]], **extra: Any
                 ) -> dict[str, Any]:
    lang = language(request)
    settings = getattr(request.app.state, "settings", None)
    return {"request": request, "lang": lang, "t": words[lang], "strings": words,
            **sign_in_context(settings), **extra}


def random_key() -> str:
    """Part of an Idempotency-Key a page hands to its form (the rest says what it is for)."""
    return secrets.token_hex(12)
