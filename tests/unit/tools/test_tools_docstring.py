from __future__ import annotations

from pilothouse.tools.docstring import parse_docstring


def test_google_style_description_and_args() -> None:
    doc = """Get the weather for a city.

    Uses the public forecast service.

    Args:
        city (str): The city name,
            in English.
        days: How many days ahead.

    Returns:
        A short forecast.
    """
    parsed = parse_docstring(doc)
    assert parsed.description == "Get the weather for a city.\n\nUses the public forecast service."
    assert parsed.params == {"city": "The city name, in English.", "days": "How many days ahead."}


def test_google_style_text_on_next_line_and_star_args() -> None:
    doc = """Do it.

    Arguments:
        name:
            Who to greet.
        **extra: Ignored.
    """
    assert parse_docstring(doc).params == {"name": "Who to greet.", "extra": "Ignored."}


def test_rest_style_params() -> None:
    doc = """Search the catalogue.

    :param query: Words to look for.
    :param int limit: At most this many
        results.
    :type query: str
    :returns: Matching items.
    """
    parsed = parse_docstring(doc)
    assert parsed.description == "Search the catalogue."
    assert parsed.params == {"query": "Words to look for.", "limit": "At most this many results."}


def test_numpy_style_params() -> None:
    doc = """Convert an amount.

    Parameters
    ----------
    amount : float
        The amount to convert.
    source, target : str
        Currency codes.

    Returns
    -------
    float
        The converted amount.
    """
    parsed = parse_docstring(doc)
    assert parsed.description == "Convert an amount."
    assert parsed.params == {
        "amount": "The amount to convert.",
        "source": "Currency codes.",
        "target": "Currency codes.",
    }


def test_no_docstring_and_plain_docstring() -> None:
    assert parse_docstring(None).description is None
    assert parse_docstring("   ").params == {}
    plain = parse_docstring("Just a sentence.\n\nAnd a second paragraph with a colon: here.")
    assert plain.description == "Just a sentence.\n\nAnd a second paragraph with a colon: here."
    assert plain.params == {}


def test_sections_that_are_not_parameters_are_ignored() -> None:
    doc = """Summary.

    Raises:
        ValueError: When things go wrong.
    Example:
        x: 1
    """
    parsed = parse_docstring(doc)
    assert parsed.description == "Summary."
    assert parsed.params == {}
