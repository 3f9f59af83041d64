"""Rendering pages: one Jinja2 environment, translated per request, with the nav of each role.

`render(request, "hospital/incoming.html", {...}, staff)` renders a template that extends
`base.html` (blocks `title` and `content`). Every template sees `_`, `gettext`, `ngettext` (the
user's language; `pgettext(context, text)` where a word's translation depends on where it
stands), `csrf_field()` (the hidden CSRF input every POST form must contain),
`format_datetime`, `format_date`, `format_number`, `staff`, `nav`, `lang` and `languages`.
Autoescaping is on; templates never carry inline scripts or styles (the CSP forbids them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from medalliance.web import i18n
from medalliance.web.i18n import N_
from medalliance.web.security import CSRF_FIELD
from medalliance.web.staff import Staff

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGE_COOKIE = "medalliance_lang"

# The navigation of each role: (path, label). The hospital and commission parts add their pages.
NAV: dict[str, list[tuple[str, str]]] = {
    "doctor": [("/hospital/", N_("Hospital"))],
    "clerk": [("/hospital/", N_("Hospital"))],
    "reviewer": [("/commission/", N_("Commission"))],
    "auditor": [("/commission/", N_("Commission"))],
    "operator": [("/operator/", N_("Alliance operations"))],
}

ROLE_NAMES = {
    "doctor": N_("Doctor"),
    "clerk": N_("Referral clerk"),
    "reviewer": N_("Commission reviewer"),
    "auditor": N_("Commission auditor"),
    "operator": N_("Alliance operator"),
}

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)


@pass_context
def _csrf_field(context: Context) -> Markup:
    token = context.get("csrf_token", "")
    # Markup.format escapes its arguments: the token cannot break out of the attribute.
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


env.globals["csrf_field"] = _csrf_field


def language_of(request: Request, staff: Staff | None) -> str:
    """The staff member's language, else the language cookie, else the browser's."""
    if staff is not None:
        return i18n.choose_language(staff.language)
    return i18n.choose_language(
        request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language", "")
    )


def render(
    request: Request,
    template_name: str,
    context: Mapping[str, Any],
    staff: Staff | None,
    status_code: int = 200,
) -> HTMLResponse:
    """The page `template_name` in the user's language."""
    lang = language_of(request, staff)
    translations = i18n.translations(lang)
    values: dict[str, Any] = {
        "request": request,
        "staff": staff,
        "lang": lang,
        "html_lang": lang.replace("_", "-"),
        "languages": i18n.LANGUAGES,
        "nav": NAV.get(staff.role, []) if staff else [],
        "role_name": ROLE_NAMES.get(staff.role, "") if staff else "",
        "csrf_token": getattr(request.state, "csrf", ""),
        "current_path": request.url.path,
        "_": translations.ugettext,
        "gettext": translations.ugettext,
        "ngettext": translations.ungettext,
        "pgettext": translations.upgettext,
        "format_datetime": lambda value: i18n.format_datetime(value, lang),
        "format_date": lambda value: i18n.format_date(value, lang),
        "format_number": lambda value: i18n.format_number(value, lang),
        **context,
    }
    html = env.get_template(template_name).render(values)
    return HTMLResponse(html, status_code=status_code)
