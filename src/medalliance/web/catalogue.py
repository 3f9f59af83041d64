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
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]


def used_messages() -> dict[str, str | None]:
    """msgid → its plural form (None for a singular message) of every message web/ uses."""
    found: dict[str, str | None] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        WEB,
        METHODS,
        keywords=KEYWORDS,
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    ):
        if isinstance(message, tuple):
            found[message[0]] = message[1]
        elif message:
            found.setdefault(message, None)
    return found


def read(language: str) -> Catalog:
    with catalogue_path(language).open("rb") as po:
        return read_po(po, locale=language)


def missing(language: str) -> list[str]:
    """The used msgids without a translation in `language`."""
    catalog = read(language)
    out = []
    for msgid, plural in used_messages().items():
        entry = catalog.get(msgid if plural is None else (msgid, plural))
        if entry is None and plural is not None:
            entry = catalog.get(msgid)
        strings = entry.string if entry is not None else ""
        values = strings if isinstance(strings, tuple) else (strings,)
        if entry is None or not all(values):
            out.append(msgid)
    return out


def add_missing() -> dict[str, list[str]]:
    """Append the used msgids the .po files lack (untranslated) and return them per language."""
    added: dict[str, list[str]] = {}
    used = used_messages()
    for language in LANGUAGES:
        catalog = read(language)
        new = [m for m in used if catalog.get(m) is None]
        for msgid in new:
            plural = used[msgid]
            catalog.add(msgid if plural is None else (msgid, plural))
        if new:
            with catalogue_path(language).open("wb") as po:
                write_po(po, catalog, width=100, omit_header=False, sort_output=False)
        added[language] = new
    return added


if __name__ == "__main__":
    result = add_missing()
    for lang, ids in result.items():
        for msgid in ids:
            print(f"{lang}: add a translation for {msgid!r}")
    sys.exit(1 if any(missing(lang) for lang in LANGUAGES) else 0)
