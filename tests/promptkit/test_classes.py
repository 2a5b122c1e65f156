"""Class sets: built-in label orders, comma lists, files, and the bad inputs."""

from __future__ import annotations

import fake_llm  # noqa: F401  (puts the real promptkit first on sys.path)
import pytest

from promptkit.classes import ClassSet, resolve_classes
from promptkit.errors import ClassSetError

SEVEN = ["happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear"]


def test_builtin_label_orders():
    assert list(resolve_classes("dfew").classes) == SEVEN
    assert list(resolve_classes("FERV39k").classes) == SEVEN
    mafw = resolve_classes("mafw")
    assert mafw.name == "mafw" and mafw.builtin
    assert list(mafw.classes) == SEVEN + ["contempt", "anxiety", "helplessness", "disappointment"]


def test_comma_list_keeps_order():
    own = resolve_classes(" joy , calm,fear ")
    assert own == ClassSet("custom", ("joy", "calm", "fear")) and not own.builtin
    assert resolve_classes("b,a", name="mine").name == "mine"


def test_file_one_class_per_line(tmp_path):
    path = tmp_path / "My Classes.txt"
    path.write_text("# my labels\njoy\ncalm\n\nfear\n")
    own = resolve_classes(str(path))
    assert own.name == "my-classes" and own.classes == ("joy", "calm", "fear")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bogus", "unknown class set 'bogus'"),
        ("", "no classes given"),
        ("joy,,calm", "class 1 has an empty name"),
        ("joy,calm,Joy", "duplicate class name 'Joy'"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ClassSetError, match=message):
        resolve_classes(spec)


def test_empty_file_and_bad_name(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n# nothing\n")
    with pytest.raises(ClassSetError, match="holds no class names"):
        resolve_classes(str(path))
    with pytest.raises(ClassSetError, match="bad class set name"):
        resolve_classes("a,b", name="My Set")


def test_comma_list_longer_than_a_file_name():
    # Looking for a file named like the spec must not fail with "File name too long" (an OSError).
    names = tuple(f"class number {i}" for i in range(30))
    spec = ",".join(names)
    assert len(spec) > 255
    assert resolve_classes(spec).classes == names
    with pytest.raises(ClassSetError, match="unknown class set"):
        resolve_classes("x" * 300)
