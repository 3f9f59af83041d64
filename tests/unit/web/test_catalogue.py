"""Every message the web client shows has a translation in both languages of the catalogue."""

from __future__ import annotations

import pytest

from medalliance.web import catalogue, i18n


@pytest.mark.parametrize(
    "language",
    list(i18n.LANGUAGES),
    ids=lambda lang: f"the {lang} catalogue translates every used msgid",
)
def test_every_used_message_is_translated(language: str) -> None:
    assert catalogue.used_messages(), "extraction found no message at all: the method map is wrong"
    missing = catalogue.missing(language)
    assert not missing, (
        f"{language} lacks translations for {missing}; run `python -m medalliance.web.catalogue` "
        "and fill in the new entries of both .po files"
    )


def test_chinese_is_the_default_and_translates() -> None:
    assert i18n.choose_language(None, "") == "zh_CN"
    assert i18n.gettext("zh_CN", "Log in") == "登录"
    assert i18n.gettext("en", "Log in") == "Log in"
    assert i18n.choose_language(None, "en-GB,en;q=0.8") == "en"
