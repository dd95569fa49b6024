"""Property tests: the reply decoder never leaks a foreign exception, the request
validators agree with the seed's documented patterns, and valid requests survive JSON.

The patterns are the ones the createCustomer seed page documents (``tests/_seeds.py``),
never copied.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import string
from typing import Any

import attrs
import msgspec
import pytest
from _customer_wire import customer_from_record, customer_from_wire, page_from_wire
from _seed_records import QUIRKS, seed_record
from _seeds import documented_patterns
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enkash_async._validation import gstin_check_character
from enkash_async._wire import _stream, read_search_reply, record_reader, wire_name
from enkash_async.errors import EnkashError, UnexpectedResponseError, ValidationError
from enkash_async.models import (
    Customer,
    CustomerCreate,
    CustomerSource,
    KeyContact,
    KeyContactCreate,
    Reminder,
    ReminderCreate,
    ReminderType,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- the seed


SEED_PATTERNS = documented_patterns()
SEED_REGEX = {name: re.compile(rx, re.ASCII) for name, rx in SEED_PATTERNS.items()}


def _top_level_alternatives(regex: str) -> list[str]:
    """``regex`` split at each ``|`` outside groups and character classes."""
    parts, depth, start, index, in_class = [], 0, 0, 0, False
    while index < len(regex):
        char = regex[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(regex[start:index])
            start = index + 1
        index += 1
    return [*parts, regex[start:]]


def _pan_and_gstin() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The seed's panOrGstin is ``^$|^(GSTIN)?|(PAN)$``: split it into its two formats."""
    empty, gstin, pan = _top_level_alternatives(SEED_PATTERNS["panOrGstin"])
    assert empty == "^$" and gstin.startswith("^") and gstin.endswith(")?") and pan.endswith("$")
    return re.compile(gstin[1:-1], re.ASCII), re.compile(pan[:-1], re.ASCII)


SEED_GSTIN, SEED_PAN = _pan_and_gstin()

_BASE36 = string.digits + string.ascii_uppercase


def reference_check_character(first14: str) -> str:
    """The GSTIN check character as the GSTN specifies it: Luhn mod 36, from the right,
    doubling every other code point starting with the rightmost."""
    factor, total = 2, 0
    for char in reversed(first14.upper()):
        product = factor * _BASE36.index(char)
        total += product // 36 + product % 36
        factor = 1 if factor == 2 else 2
    return _BASE36[(36 - total % 36) % 36]


def reference_pan_or_gstin_ok(value: str) -> bool:
    if value == "" or SEED_PAN.fullmatch(value):
        return True
    return bool(SEED_GSTIN.fullmatch(value)) and (
        reference_check_character(value[:14]) == value[14].upper()
    )


def test_the_seed_documents_the_patterns_this_suite_fuzzes() -> None:
    assert set(SEED_PATTERNS) == {
        "accountNumber",
        "companyId",
        "contactNumber",
        "email",
        "mobile",
        "ifsc",
        "panOrGstin",
        "pinCode",
    }
    assert reference_check_character("27AAPFU0939F1Z") == "V"
    assert SEED_GSTIN.fullmatch("27AAPFU0939F1ZV") and SEED_PAN.fullmatch("AAPFU0939F")


# --------------------------------------------------------------------------- decoding

# Values that break liberal readers: non-finite and huge numbers (epoch millis out of
# range), odd numeric strings, placeholders.
_tricky = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "true",
            "false",
            "ONCE",
            "HH:mm",
            "09:30",
            "2019-08-24T14:15:22Z",
            "12",
            "NaN",
            "Infinity",
            "-inf",
            "sNaN",
            "1e400",
            "1_000",
            float("nan"),
            float("inf"),
        ]
    ),
    # magnitudes spread evenly over many orders, as int and as float
    st.builds(
        lambda digit, power, sign, as_float: (float if as_float else int)(sign * digit * 10**power),
        st.integers(1, 9),
        st.integers(9, 40),
        st.sampled_from([1, -1]),
        st.booleans(),
    ),
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
)
json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _shaped(model: type[Any], nested: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Objects using the model's own wire keys, each with any JSON value (or a nested shape)."""
    keys = {wire_name(a): nested.get(a.name, _tricky | json_values) for a in _fields(model)}
    keys["undocumentedKey"] = json_values
    return st.fixed_dictionaries({}, optional=keys)


def _fields(model: type[Any]) -> tuple[Any, ...]:
    return tuple(attrs.fields(model))


_contact = _shaped(KeyContact, {})
_reminder = _shaped(
    Reminder,
    {
        "reminder_time": json_values
        | st.dictionaries(st.sampled_from(["hour", "minute"]), json_values)
    },
)
customer_like = _shaped(
    Customer,
    {
        "customer_key_contacts": st.lists(_contact | json_values, max_size=3) | json_values,
        "customer_reminders": st.lists(_reminder | json_values, max_size=3) | json_values,
    },
)
page_like = st.fixed_dictionaries(
    {},
    optional={
        "data": st.lists(customer_like, max_size=3) | json_values,
        "recordsCount": json_values,
    },
)


@pytest.mark.slow
@FUZZ
@given(st.one_of(json_values, customer_like))
def test_customer_decoder_succeeds_or_raises_only_enkash_errors(value: Any) -> None:
    try:
        customer = customer_from_wire(value)
    except EnkashError as exc:
        assert isinstance(exc, UnexpectedResponseError)
    else:
        assert isinstance(customer, Customer)


@FUZZ
@given(st.one_of(json_values, page_like))
def test_page_decoder_succeeds_or_raises_only_enkash_errors(value: Any) -> None:
    try:
        customers, count = page_from_wire(value)
    except EnkashError as exc:
        assert isinstance(exc, UnexpectedResponseError)
    else:
        assert all(isinstance(c, Customer) for c in customers)
        assert count is None or isinstance(count, int)


@pytest.mark.slow
@FUZZ
@given(customer_like)
def test_a_decoded_customer_encodes_to_strict_json_and_decodes_back_the_same(value: Any) -> None:
    try:
        customer = customer_from_wire(value)
    except UnexpectedResponseError:
        return
    wire = json.loads(json.dumps(customer.to_dict(), allow_nan=False))
    again = customer_from_wire(wire)
    assert again.to_dict() == wire


AWKWARD: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    "",
    " ",
    "x",
    "true",
    "NaN",
    "Infinity",
    "-Infinity",
    "sNaN",
    "1e400",
    "1_000",
    "09:30",
    "HH:mm",
    "2019-08-24T14:15:22Z",
    "0001-01-01T00:00:00+05:30",
    "9999-12-31T23:59:59-05:00",
    float("nan"),
    float("inf"),
    float("-inf"),
    [],
    {},
    [None],
    ["x", 1],
    {"hour": 9},
    {"hour": float("inf")},
    [9, float("nan")],
    {"a": {"b": []}},
    *(sign * 10**power for power in range(9, 41) for sign in (1, -1)),
    *(sign * 10.0**power for power in range(9, 41) for sign in (1, -1)),
]


@pytest.mark.parametrize("model", [Customer, KeyContact, Reminder], ids=lambda m: m.__name__)
def test_every_field_given_any_awkward_value_decodes_or_raises_only_enkash_errors(
    model: type[Any],
) -> None:
    """A deterministic sweep of every wire key with values that broke readers before."""
    for attribute in _fields(model):
        for value in AWKWARD:
            record = {wire_name(attribute): value}
            if model is KeyContact:
                record = {"customerKeyContacts": [record]}
            elif model is Reminder:
                record = {"customerReminders": [record]}
            try:
                customer = customer_from_wire(record)
            except UnexpectedResponseError:
                continue
            except Exception as exc:  # pragma: no cover - the failure this test looks for
                raise AssertionError(f"{record!r} raised {exc!r}") from exc
            json.dumps(customer.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- validators

_junk = st.sampled_from(["x", " ", "\n", "0", "9", "-", "+", "\u0661", "\u0663\u0664", "Z", "@"])


def _candidates(regex: re.Pattern[str]) -> st.SearchStrategy[str]:
    valid = st.from_regex(regex, fullmatch=True)
    return st.one_of(
        valid,
        st.tuples(valid, _junk).map("".join),  # a valid value plus trailing junk
        st.tuples(_junk, valid).map("".join),
        st.text(alphabet="0123456789+- \nCEKAHDFCabz\u0663", max_size=16),
        st.text(max_size=16),
    )


def _problems_for(wire_field: str, value: str) -> set[str]:
    """The fields a request model reports when ``value`` is put in ``wire_field``."""
    contact: dict[str, Any] = {"name": "A", "legal_name": "A", "mobile": "9876543210"}
    overrides: dict[str, Any] = {}
    try:
        if wire_field == "mobile":
            KeyContactCreate(**{**contact, "mobile": value})
        else:
            attribute = next(a.name for a in _fields(CustomerCreate) if wire_name(a) == wire_field)
            overrides[attribute] = value
            CustomerCreate(
                legal_name="A", customer_key_contacts=[KeyContactCreate(**contact)], **overrides
            )
    except ValidationError as exc:
        return set(exc.fields)
    return set()


@pytest.mark.parametrize(
    "wire_field", ["accountNumber", "companyId", "contactNumber", "mobile", "ifsc", "pinCode"]
)
def test_validator_agrees_with_the_seed_pattern(wire_field: str) -> None:
    seed = SEED_REGEX[wire_field]

    @FUZZ
    @given(_candidates(seed))
    def agree(value: str) -> None:
        accepted = not _problems_for(wire_field, value)
        assert accepted == bool(seed.fullmatch(value)), value

    agree()


def _gstin_like() -> st.SearchStrategy[str]:
    body = st.from_regex(SEED_GSTIN, fullmatch=True)
    correct = body.map(lambda g: g[:14] + reference_check_character(g[:14]))
    return st.one_of(body, correct, correct.map(str.lower))


@FUZZ
@given(
    st.one_of(
        _gstin_like(),
        _gstin_like().flatmap(lambda g: _junk.map(lambda j: g + j)),
        _candidates(SEED_PAN),
        st.from_regex(SEED_REGEX["panOrGstin"], fullmatch=False),  # what the seed's prefix lets in
    )
)
def test_pan_or_gstin_validator_accepts_empty_a_pan_or_a_checked_gstin_only(value: str) -> None:
    accepted = not _problems_for("panOrGstin", value)
    assert accepted == reference_pan_or_gstin_ok(value), value


@FUZZ
@given(st.text(alphabet=_BASE36, min_size=14, max_size=14))
def test_gstin_check_character_is_luhn_mod_36(first14: str) -> None:
    assert gstin_check_character(first14) == reference_check_character(first14)


# --------------------------------------------------------------------------- round trip


def _seed_valid(wire_field: str) -> st.SearchStrategy[str]:
    return st.from_regex(SEED_REGEX[wire_field], fullmatch=True)


_text = st.text(max_size=20)
_name = st.text(min_size=1, max_size=20).filter(str.strip)
_flag = st.none() | st.booleans()
_int32 = st.none() | st.integers(-(2**31), 2**31 - 1)

CONTACT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": _name,
    "legal_name": _name,
    "mobile": _seed_valid("mobile"),
    "deleted": st.booleans(),
    "email": st.none() | _seed_valid("email"),
    "key_contact_person_id": st.none() | _text,
    "mail_enabled": _flag,
    "sms_enabled": _flag,
    "whatsapp_enabled": _flag,
    "via": st.none() | _text,
}
REMINDER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "customer_reminder_id": st.none() | _text,
    "due_date_difference": _int32,
    "reminder_interval": _int32,
    "reminder_time": st.none()
    | st.times().map(lambda t: t.replace(second=0, microsecond=0))
    | st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59)),
    "reminder_type": st.none()
    | st.sampled_from(ReminderType)
    | st.sampled_from(["ONCE", "RECURRING"]),
    "stage": st.none() | _text,
}
CUSTOMER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "legal_name": _name,
    "customer_key_contacts": st.lists(st.builds(KeyContactCreate, **CONTACT_FIELDS), max_size=3),
    "account_number": st.none() | _seed_valid("accountNumber"),
    "address": st.none() | _text,
    "company_id": st.none() | _seed_valid("companyId"),
    "contact_number": st.none() | _seed_valid("contactNumber"),
    "customer_company_id": st.none() | _text,
    "customer_reminders": st.none()
    | st.lists(st.builds(ReminderCreate, **REMINDER_FIELDS), max_size=3),
    "external_source": _flag,
    "ifsc": st.none() | _seed_valid("ifsc"),
    "pan_or_gstin": st.none()
    | st.just("")
    | _seed_valid("panOrGstin").filter(reference_pan_or_gstin_ok)
    | _gstin_like().filter(reference_pan_or_gstin_ok),
    "pin_code": st.none() | _seed_valid("pinCode"),
    "source": st.none() | st.sampled_from(CustomerSource),
    "state": st.none() | _text,
    "unique_ref_no": st.none() | _text,
}
valid_customers = st.builds(CustomerCreate, **CUSTOMER_FIELDS)


@pytest.mark.parametrize(
    ("model", "strategies"),
    [
        (CustomerCreate, CUSTOMER_FIELDS),
        (KeyContactCreate, CONTACT_FIELDS),
        (ReminderCreate, REMINDER_FIELDS),
    ],
    ids=["CustomerCreate", "KeyContactCreate", "ReminderCreate"],
)
def test_the_round_trip_strategy_sets_every_field(
    model: type[Any], strategies: dict[str, Any]
) -> None:
    """Guards the property below against fields the strategy leaves at their default."""
    assert set(strategies) == {a.name for a in _fields(model)}


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_customers)
def test_every_valid_customer_create_survives_json_unchanged(customer: CustomerCreate) -> None:
    wire = json.loads(json.dumps(customer.to_dict(), allow_nan=False))
    assert CustomerCreate.from_dict(wire) == customer


def test_a_reminder_time_given_as_a_time_survives_the_round_trip() -> None:
    reminder = ReminderCreate(reminder_time=dt.time(9, 30))
    assert ReminderCreate.from_dict(json.loads(json.dumps(reminder.to_dict()))) == reminder


@pytest.mark.slow
@FUZZ
@given(st.lists(customer_like | json_values, max_size=3))
def test_records_read_from_raw_views_equal_the_liberal_reading_of_the_same_json(
    records: list[Any],
) -> None:
    body = json.dumps({"payload": {"data": records}}).encode()
    raws = read_search_reply(body)["payload"]["data"]  # dicts, when msgspec refuses (NaN)
    for raw, plain in zip(raws, json.loads(body)["payload"]["data"], strict=True):
        assert _outcome(lambda raw=raw: customer_from_record(raw)) == _outcome(
            lambda plain=plain: customer_from_wire(plain)
        )


def _outcome(read: Any) -> Any:
    try:
        return read()
    except UnexpectedResponseError:
        return UnexpectedResponseError


@FUZZ
@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        ["{!r}", "{:.2f}", "{:.1f}", "{:.15g}", "{:.17g}", "{:e}", "{:.3E}", "{:.20f}"]
    ),
)
def test_an_amount_in_any_notation_reads_from_a_raw_view_as_the_liberal_reader_reads_it(
    number: float, notation: str
) -> None:
    text = notation.format(number)
    body = b'{"payload": {"data": [{"netAmount": %s}]}}' % text.encode()
    (raw,) = read_search_reply(body)["payload"]["data"]
    fast = _outcome(lambda: customer_from_record(raw).net_amount)
    liberal = _outcome(
        lambda: customer_from_wire(json.loads(body)["payload"]["data"][0]).net_amount
    )
    assert repr(fast) == repr(liberal), text  # the same digits and exponent, not only value


# --------------------------------------------------------------------------- seed shapes

# Every shape the liberal contract accepts for a field, and a few it refuses. No NaN,
# Infinity or lone surrogates: msgspec refuses those in the envelope, and then the page
# is parsed whole (read liberally by design).
_text_value = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_liberal_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    _finite,
    _text_value,
    st.sampled_from(["true", "false", "string", "HH:mm", " 7 ", "2019-08-24T14:15:22Z", "1.50"]),
)
_local_time = st.one_of(
    st.sampled_from(["HH:mm", "10:30", "10:30:00", "10:30:00.123", " 10:30", "25:00", ""]),
    st.lists(st.integers(-2, 70) | _finite, min_size=1, max_size=5),
    st.dictionaries(st.sampled_from(["hour", "minute", "second", "nano"]), _liberal_scalar),
    _liberal_scalar,
)
_string_list = st.none() | st.lists(_liberal_scalar, max_size=3)


def _field_values(model: type[Any]) -> dict[str, st.SearchStrategy[Any]]:
    special = {"reminderTime": _local_time, "branchCodes": _string_list, "warnings": _string_list}
    return {
        wire_name(a): special.get(wire_name(a), _liberal_scalar)
        for a in _fields(model)
        if wire_name(a) not in ("customerKeyContacts", "customerReminders")
    }


@st.composite
def seed_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """A seed example record with documented quirks applied and a few fields redrawn."""
    record = seed_record(draw(st.integers(0, 9)))
    for quirk in draw(st.lists(st.sampled_from(sorted(QUIRKS)), max_size=3)):
        if record["customerKeyContacts"] and record["customerReminders"]:
            QUIRKS[quirk](record)
    for target, model in (
        (record, Customer),
        *((contact, KeyContact) for contact in record["customerKeyContacts"] or ()),
        *((reminder, Reminder) for reminder in record["customerReminders"] or ()),
    ):
        target.update(draw(st.fixed_dictionaries({}, optional=_field_values(model))))
    return record


@pytest.mark.slow
@FUZZ
@given(st.lists(seed_shaped(), min_size=1, max_size=4))
def test_seed_shaped_records_read_on_the_fast_path_as_the_liberal_reader_reads_them(
    records: list[dict[str, Any]],
) -> None:
    """One fresh reader over a page (a field widened by one record stays widened for the
    next): each record reads as the liberal reader reads it, and every record that
    reader can read is read field by field, never whole."""
    body = json.dumps({"payload": {"data": records}}).encode()
    raws = read_search_reply(body)["payload"]["data"]
    read = record_reader(Customer, "CustomerResponse")
    read_whole = _stream.record_from_wire
    wholes: list[Any] = []

    def counted(record: Any, *args: Any) -> Any:
        wholes.append(record)
        return read_whole(record, *args)

    for raw, plain in zip(raws, json.loads(body)["payload"]["data"], strict=True):
        assert isinstance(raw, msgspec.Raw)
        expected = _outcome(lambda plain=plain: customer_from_wire(plain))
        _stream.record_from_wire = counted  # type: ignore[assignment]
        try:
            fast = _outcome(lambda raw=raw: read(raw))
        finally:
            _stream.record_from_wire = read_whole  # type: ignore[assignment]
        assert fast == expected
        if expected is not UnexpectedResponseError:
            assert wholes == [], plain
        wholes.clear()
