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


def page_context(request: Request, words: dict[str, dict[str, str]], **extra: Any
                 ) -> dict[str, Any]:
    lang = language(request)
    return {"request": request, "lang": lang, "t": words[lang], "strings": words, **extra}


def random_key() -> str:
    """Part of an Idempotency-Key a page hands to its form (the rest says what it is for)."""
    return secrets.token_hex(12)
