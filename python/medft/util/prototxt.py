"""Protobuf text format as Caffe reads it, written one way everywhere."""

from __future__ import annotations

from google.protobuf import text_format

#: floats with 7 significant digits: what a float32 holds, without 0.1 becoming 0.100000001
FLOAT_FORMAT = ".7g"


def to_text(message) -> str:
    """``message`` as prototxt text."""
    return text_format.MessageToString(message, float_format=FLOAT_FORMAT)
