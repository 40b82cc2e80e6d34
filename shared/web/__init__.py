"""What the services' pages share: templates, static files, the page strings, the language.

Each service keeps its own pages in ``services/<name>/web/`` (``templates/``, ``static/``,
``strings.json``) and serves them itself; the look and the small browser modules every page
uses (sign-in, language, API calls) live once, here, in ``shared/web/``. No build step: the
browser loads plain ES modules and one stylesheet.
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


@cache
def strings(path: Path) -> dict[str, dict[str, str]]:
    """A page's words, ``{"zh": {...}, "en": {...}}``; every key is in both languages."""
    data = json.loads(path.read_text(encoding="utf-8"))
    missing = set(data["zh"]) ^ set(data["en"])
    if missing:
        raise ValueError(f"{path}: keys not in both languages: {sorted(missing)}")
    return data


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
