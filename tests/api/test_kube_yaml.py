"""YAML read as kubectl reads it (``tunix_rt.reading.kube_yaml``): the plain scalars where
PyYAML's YAML 1.1 and Kubernetes part ways, as the real API server stored them
(``tests/control_plane/test_yaml_reading.py`` compares against it), and ``--set`` values
read the same way."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tunix_rt.api.overrides import assignments_to_overrides
from tunix_rt.reading import MANIFEST, ReadError, load_all
from tunix_rt.reading.kube_yaml import dump


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1:30:00", "1:30:00"),  # YAML 1.1: 5400
        ("1e-4", 0.0001),  # YAML 1.1: a string
        ("5E3", 5000),  # a whole float is stored as an integer (the JSON round trip)
        ("2.0", 2),
        (".5", 0.5),
        ("1.", 1),
        ("017", 15),
        ("0o17", 15),  # YAML 1.1: a string
        ("08", 8),
        ("0x1F", 31),
        ("+0x1F", 31),
        ("0b101", 5),
        ("1_000", 1000),
        ("yes", True),  # go-yaml v2 keeps YAML 1.1's booleans: so does the API server
        ("Off", False),
        ("y", True),  # YAML 1.1 (PyYAML): the string 'y'
        ("tRUE", "tRUE"),
        ("~", None),
        ("2001-12-14", "2001-12-14"),  # YAML 1.1: a date
        ("1e400", "1e400"),  # out of range: a string, as Go's ParseFloat refuses it
        ("9223372036854775808", 9223372036854775808.0),  # past int64: stored as a float
        ('"1"', "1"),
    ],
)
def test_plain_scalars_read_as_the_api_server_stores_them(text: str, value: Any) -> None:
    (doc,) = load_all(f"v: {text}\n", "t", MANIFEST)
    assert doc["v"] == value and type(doc["v"]) is type(value)


def test_keys_become_the_strings_kubectl_sends() -> None:
    (doc,) = load_all("y: a\n7: b\nfalse: c\n", "t", MANIFEST)
    assert doc == {"true": "a", "7": "b", "false": "c"}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("y: 1\ntrue: 2\n", "duplicate key 'true'"),
        ("? [1]\n: 2\n", "a key must be a string"),
        ("v: .nan\n", "v: .nan cannot be sent to Kubernetes"),
        ("v: &a [1, *a]\n", "v[1]: an alias here names a node that contains it"),
        ("v: *nowhere\n", "alias *nowhere names no anchor"),
    ],
)
def test_what_kubectl_cannot_send_is_refused(text: str, said: str) -> None:
    with pytest.raises(ReadError, match=re.escape(said)):
        load_all(text, "t", MANIFEST)


def test_set_values_are_read_as_kubectl_reads_yaml() -> None:
    out = assignments_to_overrides(["learningRate=1e-3", "model.width=0x40", "eval.on=yes"])
    assert out == {"learningRate": 0.001, "model": {"width": 64}, "eval": {"on": True}}


@pytest.mark.parametrize(
    "text",
    [
        "1234e_00001",  # a Ray Tune trial id: 12340 to kubectl, plain to PyYAML
        "0123e_00002",
        "12345_00000",
        "1e5",
        "0x1F",
        "y",
        "N",
        "yes",
        "~",
        "",
        "1:30",
        ".5",
        "-.inf",
        "a1b2c_00003",
        "plain words",
    ],
)
def test_dump_writes_strings_that_kubectl_reads_back_as_strings(text: str) -> None:
    written = dump({"v": text, text: "key"})
    (doc,) = load_all(written, "t", MANIFEST)
    assert doc == {"v": text, text: "key"}
    assert yaml.safe_load(written) == doc  # and PyYAML agrees


def test_dump_keeps_numbers_and_booleans_plain() -> None:
    assert dump({"a": 1, "b": 1e-4, "c": True, "d": None}) == "a: 1\nb: 0.0001\nc: true\nd: null\n"
