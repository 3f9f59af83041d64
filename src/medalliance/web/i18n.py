"""Translations and locale formatting of the web client: zh_CN by default, English available.

The one catalogue is `web/locale/<lang>/LC_MESSAGES/messages.po`, read at run time (compiled in
memory, so nothing binary is committed). Strings in Python code are marked with `N_()` and
translated where they are shown; templates use `_()`, `gettext` and `ngettext`.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from pathlib import Path

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

DEFAULT_LANGUAGE = "zh_CN"
LANGUAGES = {"zh_CN": "中文", "en": "English"}
LOCALE_DIR = Path(__file__).parent / "locale"


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional marker name
    """Mark a string for extraction; it is translated where it is shown."""
    return message


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


@functools.cache
def translations(language: str) -> Translations:
    """The language's catalogue (the default language's for an unknown one)."""
    if language not in LANGUAGES:
        language = DEFAULT_LANGUAGE
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain="messages")


def gettext(language: str, message: str) -> str:
    return translations(language).ugettext(message)


def pgettext(language: str, context: str, message: str) -> str:
    return translations(language).upgettext(context, message)


def ngettext(language: str, singular: str, plural: str, n: int) -> str:
    return translations(language).ungettext(singular, plural, n)


def choose_language(preferred: str | None, accept_language: str = "") -> str:
    """An account's or cookie's language if known, else the first known one the browser
    accepts, else zh_CN."""
    if preferred in LANGUAGES:
        return preferred
    for part in accept_language.split(","):
        tag = part.split(";", 1)[0].strip().replace("-", "_").lower()
        if tag.startswith("en"):
            return "en"
        if tag.startswith("zh"):
            return "zh_CN"
    return DEFAULT_LANGUAGE


def format_datetime(value: dt.datetime | str | None, language: str) -> str:
    """A timestamp (datetime or ISO text) in the user's locale, medium length, UTC."""
    moment = _parse(value)
    if moment is None:
        return "" if value is None else str(value)
    return babel_format_datetime(moment, "medium", tzinfo=dt.UTC, locale=Locale.parse(language))


def format_date(value: dt.date | dt.datetime | str | None, language: str) -> str:
    moment = (
        _parse(value) if not isinstance(value, dt.date) or isinstance(value, dt.datetime) else value
    )
    if moment is None:
        return "" if value is None else str(value)
    return babel_format_date(moment, "medium", locale=Locale.parse(language))


def format_number(value: float | int, language: str) -> str:
    return format_decimal(value, locale=Locale.parse(language))


def _parse(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None
