"""The translation catalogue's upkeep: which messages the web client uses, and which are missing.

`used_messages()` extracts, with Babel, every msgid of web/ — `_()`, `gettext()`, `ngettext()` and
`N_()` in Python and templates. `python -m medalliance.web.catalogue` appends the missing ones
(with an empty translation to fill in) to both .po files and lists them; the unit test
tests/unit/web/test_catalogue.py fails while any msgid lacks a translation in either language.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from medalliance.web.i18n import LANGUAGES, catalogue_path

WEB = Path(__file__).parent
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "N_": None,
    # A word whose translation depends on where it stands (驳回 an application, 拒收 a referral):
    # pgettext("commission", "Reject").
    "pgettext": ((1, "c"), 2),
}
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
Key = tuple[str, str | None]  # (msgid, context)


def used_messages() -> dict[Key, str | None]:
    """(msgid, context) → its plural form (None for a singular message) of every message web/
    uses."""
    found: dict[Key, str | None] = {}
    for _file, _line, message, _comments, context in extract_from_dir(
        WEB,
        METHODS,
        keywords=KEYWORDS,
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    ):
        if isinstance(message, tuple):
            found[(message[0], context)] = message[1]
        elif message:
            found.setdefault((message, context), None)
    return found


def read(language: str) -> Catalog:
    with catalogue_path(language).open("rb") as po:
        return read_po(po, locale=language)


def missing(language: str) -> list[str]:
    """The used msgids (with their context, if any) without a translation in `language`."""
    catalog = read(language)
    out = []
    for msgid, context in used_messages():
        entry = catalog.get(msgid, context=context)
        strings = entry.string if entry is not None else ""
        values = strings if isinstance(strings, tuple) else (strings,)
        if entry is None or not all(values):
            out.append(msgid if context is None else f"{context}|{msgid}")
    return out


def add_missing() -> dict[str, list[str]]:
    """Append the used msgids the .po files lack (untranslated) and return them per language."""
    added: dict[str, list[str]] = {}
    used = used_messages()
    for language in LANGUAGES:
        catalog = read(language)
        new = [key for key in used if catalog.get(key[0], context=key[1]) is None]
        for msgid, context in new:
            plural = used[(msgid, context)]
            catalog.add(msgid if plural is None else (msgid, plural), context=context)
        if new:
            with catalogue_path(language).open("wb") as po:
                write_po(po, catalog, width=100, omit_header=False, sort_output=False)
        added[language] = [m if c is None else f"{c}|{m}" for m, c in new]
    return added


if __name__ == "__main__":
    result = add_missing()
    for lang, ids in result.items():
        for msgid in ids:
            print(f"{lang}: add a translation for {msgid!r}")
    sys.exit(1 if any(missing(lang) for lang in LANGUAGES) else 0)
