import pytest

from maya_asr.languages import LANGUAGES, get_language, parse_languages
from maya_asr.text.scripts import SCRIPTS


def test_twelve_languages_in_model_id_order():
    assert LANGUAGES == ("hi", "bn", "ta", "te", "mr", "gu", "kn", "ml", "pa", "or", "as", "en")


def test_every_language_has_a_known_script():
    for code in LANGUAGES:
        assert get_language(code).script in SCRIPTS


def test_parse_languages():
    assert parse_languages(None) == LANGUAGES
    assert parse_languages("hi, en") == ("hi", "en")
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        parse_languages("hi,xx")
    with pytest.raises(ValueError, match="twice"):
        parse_languages(["hi", "hi"])
