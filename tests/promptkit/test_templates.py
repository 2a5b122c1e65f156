"""Jinja2 templates: shipped ones, StrictUndefined, the sandbox for user files."""

from __future__ import annotations

import fake_llm  # noqa: F401  (puts the real promptkit first on sys.path)
import pytest

from promptkit.errors import TemplateError
from promptkit.templates import load_template, render_template, shipped_templates


def test_manual_prompt_templates():
    assert render_template("photo_of", class_name="anger") == "a photo of anger."
    assert render_template("expression_of", class_name="fear") == "an expression of fear."
    assert render_template("class_name.j2", class_name="joy") == "joy."
    assert render_template("description", description="raised cheeks, wide smile.") == "raised cheeks, wide smile."


def test_default_query_reproduces_the_paper_prompt():
    text = render_template("llm_query", class_name="contempt")
    assert text == (
        "Q: What are useful visual features for the facial expression of contempt?\n"
        "A: Some useful visual features for facial expressions of contempt include:"
    )
    assert {"llm_query", "llm_short_list", "photo_of", "expression_of", "class_name", "description"} <= set(
        shipped_templates()
    )


def test_missing_variable_names_it():
    with pytest.raises(TemplateError, match="variable 'description' which is not given"):
        render_template("description", class_name="joy")


def test_user_template_is_sandboxed(tmp_path):
    mine = tmp_path / "mine.j2"
    mine.write_text("Tell me about {{ class_name | upper }}.")
    assert render_template(str(mine), class_name="joy") == "Tell me about JOY."
    assert load_template(str(mine)).user and load_template("photo_of").sha256.startswith("sha256:")
    evil = tmp_path / "evil.j2"
    evil.write_text("{{ class_name.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateError, match="unsafe"):
        render_template(str(evil), class_name="joy")


def test_bad_templates(tmp_path):
    with pytest.raises(TemplateError, match="unknown template 'nope'"):
        render_template("nope", class_name="joy")
    broken = tmp_path / "broken.j2"
    broken.write_text("{% if class_name %}no end")
    with pytest.raises(TemplateError, match="broken.j2"):
        render_template(str(broken), class_name="joy")


def test_name_longer_than_a_file_name_is_unknown_not_an_os_error():
    with pytest.raises(TemplateError, match="unknown template"):
        load_template("x" * 300)
