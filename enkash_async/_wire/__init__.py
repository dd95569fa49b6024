"""EnKash's wire format: the one place Python names meet EnKash's JSON.

Works on any attrs model through its fields (an irregular wire name is in the field's
metadata) and never imports :mod:`enkash_async.models`, which builds on it.

- :mod:`._names`: Python names to wire names;
- :mod:`._read`: replies read liberally (cattrs hooks, a structure function per model);
- :mod:`._stream`: search replies read fast (msgspec; each record decoded when reached);
- :mod:`._write`: models written as wire JSON;
- :mod:`._strict`: request models built strictly from wire JSON.
"""

from enkash_async._wire._names import (
    REQUIRED_ON_WIRE,
    TEXT_FLAG,
    WIRE_NAME,
    camel_case,
    wire_field,
    wire_name,
)
from enkash_async._wire._read import page_records_from_wire, record_from_wire, record_key
from enkash_async._wire._stream import read_record_reply, read_search_reply, record_reader
from enkash_async._wire._strict import request_from_wire
from enkash_async._wire._write import to_wire

__all__ = [
    "REQUIRED_ON_WIRE",
    "TEXT_FLAG",
    "WIRE_NAME",
    "camel_case",
    "page_records_from_wire",
    "read_record_reply",
    "read_search_reply",
    "record_from_wire",
    "record_key",
    "record_reader",
    "request_from_wire",
    "to_wire",
    "wire_field",
    "wire_name",
]
