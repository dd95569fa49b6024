"""POST /api/v0/customer/search: filters, ordering, paging, validation, and seeding."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from enkash_async._validation import is_valid_gstin, pan_or_gstin_problem, pattern_problem
from enkash_async.testing import CUSTOMER_FIELDS, FakeEnkash, level_of
from enkash_async.testing._data import BANKS

if TYPE_CHECKING:
    from conftest import Api

Customer = dict[str, Any]
Case = Callable[[list[Customer]], tuple[dict[str, Any], Callable[[Customer], bool]]]

pytestmark = pytest.mark.enkash_server(customers=400, seed=11)


def _value(customers: list[Customer], field: str, nth: int = 0) -> Any:
    """The ``nth`` non-null value of ``field`` among ``customers``."""
    return [c[field] for c in customers if c[field] is not None][nth]


FILTERS: dict[str, Case] = {
    "legalName": lambda cs: (
        {"legalName": "STEEL"},
        lambda c: "steel" in c["legalName"].lower(),
    ),
    "accountNumber": lambda cs: (
        {"accountNumber": _value(cs, "accountNumber", 5)},
        lambda c: c["accountNumber"] == _value(cs, "accountNumber", 5),
    ),
    "assignedAgent": lambda cs: (
        {"assignedAgent": "meera"},
        lambda c: "meera" in (c["assignedAgent"] or "").lower(),
    ),
    "balanceAmount": lambda cs: (
        {"balanceAmount": 1_000_000},
        lambda c: c["netAmount"] >= 1_000_000,
    ),
    "companyId": lambda cs: (
        {"companyId": cs[7]["companyId"]},
        lambda c: c["id"] == cs[7]["id"],
    ),
    "contactNumber": lambda cs: (
        {"contactNumber": _value(cs, "contactNumber", 3)},
        lambda c: c["contactNumber"] == _value(cs, "contactNumber", 3),
    ),
    "createdByName": lambda cs: (
        {"createdByName": "PRIYA"},
        lambda c: "priya" in c["createdByName"].lower(),
    ),
    "createdOnRange": lambda cs: (
        {"createdOnFrom": cs[100]["createdOn"], "createdOnTo": cs[150]["createdOn"]},
        lambda c: cs[100]["createdOn"] <= c["createdOn"] <= cs[150]["createdOn"],
    ),
    "createdOnFromWithOffset": lambda cs: (
        {"createdOnFrom": "2025-06-01T05:30:00+05:30"},
        lambda c: c["createdOn"] >= "2025-06-01T00:00:00Z",
    ),
    "customerIds": lambda cs: (
        {"customerIds": [cs[3]["customerId"], cs[30]["customerId"], "KCNOSUCHCUSTOMER"]},
        lambda c: c["id"] in (cs[3]["id"], cs[30]["id"]),
    ),
    "customerStatusActive": lambda cs: ({"customerStatus": "ACTIVE"}, lambda c: c["active"]),
    "customerStatusInactive": lambda cs: (
        {"customerStatus": "INACTIVE"},
        lambda c: not c["active"],
    ),
    "customerStatusAll": lambda cs: ({"customerStatus": "ALL"}, lambda c: True),
    "dsoRange": lambda cs: ({"dsoFrom": 20, "dsoTo": 40}, lambda c: 20 <= c["dsoMedian"] <= 40),
    "ifsc": lambda cs: (
        {"ifsc": _value(cs, "ifsc", 2).lower()},
        lambda c: c["ifsc"] == _value(cs, "ifsc", 2),
    ),
    "level": lambda cs: ({"level": "LEVEL_2"}, lambda c: 30 < c["dsoMedian"] <= 60),
    "modifiedByName": lambda cs: (
        {"modifiedByName": "rao"},
        lambda c: "rao" in c["modifiedByName"].lower(),
    ),
    "modifiedOn": lambda cs: (
        {"modifiedOn": cs[50]["modifiedOn"][:10] + "T12:00:00Z"},
        lambda c: c["modifiedOn"][:10] == cs[50]["modifiedOn"][:10],
    ),
    "panOrGstin": lambda cs: (
        {"panOrGstin": _value(cs, "panOrGstin", 4).lower()},
        lambda c: c["panOrGstin"] == _value(cs, "panOrGstin", 4),
    ),
    "parentCompanyId": lambda cs: (
        {"parentCompanyId": _value(cs, "parentCompanyId")},
        lambda c: c["parentCompanyId"] == _value(cs, "parentCompanyId"),
    ),
    "selectAll": lambda cs: ({"selectAll": True}, lambda c: True),
    "uniqueRefNo": lambda cs: ({"uniqueRefNo": "ERP-0000042"}, lambda c: c["id"] == 42),
    "combined": lambda cs: (
        {"legalName": "pharma", "customerStatus": "ACTIVE", "dsoTo": 30},
        lambda c: "pharma" in c["legalName"].lower() and c["active"] and c["dsoMedian"] <= 30,
    ),
    "emptyValuesMeanNoCondition": lambda cs: (
        {"legalName": "", "ifsc": None, "customerIds": []},
        lambda c: True,
    ),
}
_SELECTS_ALL = {"customerStatusAll", "selectAll", "emptyValuesMeanNoCondition"}


@pytest.mark.parametrize("name", FILTERS)
async def test_each_filter_selects_exactly_the_matching_customers(api: Api, name: str) -> None:
    customers = api.server.customers
    body, matches = FILTERS[name](customers)
    expected = [c["id"] for c in customers if matches(c)]

    reply = await api.search(body, params={"limit": 5000})

    assert reply.status == 200, reply.body
    assert [c["id"] for c in reply.data] == expected
    assert reply.json["payload"]["recordsCount"] == len(expected)
    assert expected, "the case should match something"
    if name not in _SELECTS_ALL:
        assert len(expected) < len(customers), "the case should leave something out"


@pytest.mark.parametrize("body", [None, {}], ids=["no-body", "empty-object"])
async def test_no_filter_means_every_customer(api: Api, body: Any) -> None:
    reply = await api.search(body, params={"limit": 5000})

    assert reply.status == 200
    assert reply.json["payload"]["recordsCount"] == 400
    assert [c["id"] for c in reply.data] == list(range(1, 401))


async def test_defaults_are_the_first_ten_by_ascending_id(api: Api) -> None:
    reply = await api.search({})

    assert [c["id"] for c in reply.data] == list(range(1, 11))
    assert reply.json["payload"]["recordsCount"] == 400
    assert reply.json["errorResponse"] is None and reply.json["response_code"] == 0


async def test_search_results_are_full_customer_responses(api: Api) -> None:
    reply = await api.search({}, params={"limit": 1})

    assert set(reply.json["payload"]) == {"data", "recordsCount"}
    assert tuple(reply.data[0]) == CUSTOMER_FIELDS


def _key(customer: Customer, field: str) -> tuple[bool, Any]:
    return (customer[field] is None, customer[field])


@pytest.mark.parametrize(
    "field",
    [
        "id",
        "legalName",
        "netAmount",
        "createdOn",
        "dsoMedian",
        "parentCompanyId",
        "active",
        "customerId",
        "assignedAgent",
    ],
)
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_order_by_sorts_on_the_field_and_breaks_ties_by_ascending_id(
    api: Api, field: str, direction: str
) -> None:
    data = await api.search_all({}, orderBy=field, direction=direction)

    assert len(data) == 400
    for before, after in itertools.pairwise(data):
        a, b = _key(before, field), _key(after, field)
        if a == b:
            assert before["id"] < after["id"]
        elif direction == "ASC":
            assert a < b  # so nulls come last
        else:
            assert a > b  # so nulls come first


@pytest.mark.parametrize(
    ("field", "direction"), [("id", "DESC"), ("legalName", "ASC"), ("dsoMedian", "DESC")]
)
async def test_a_customer_ids_search_is_ordered_and_filtered_like_any_search(
    api: Api, field: str, direction: str
) -> None:
    every = await api.search_all({"customerStatus": "ACTIVE"}, orderBy=field, direction=direction)
    ids = [c["customerId"] for c in api.server.customers[::4]]
    chosen = set(ids)

    data = await api.search_all(
        {"customerIds": [*ids, ids[0], "KCNOSUCHCUSTOMER"], "customerStatus": "ACTIVE"},
        orderBy=field,
        direction=direction,
    )

    assert [c["id"] for c in data] == [c["id"] for c in every if c["customerId"] in chosen]
    assert data, "the case should match something"


async def test_a_patched_customer_keeps_its_place_in_id_order(api: Api) -> None:
    before = await api.search_all({})
    patched = before[200]["customerId"]
    url = f"{api.server.url}/api/v0/customer/{patched}"
    headers = {"Authorization": f"Bearer {api.server.token}"}
    async with api.http.patch(url, json={"address": "1 New Road"}, headers=headers) as reply:
        assert reply.status == 200, await reply.read()

    after = await api.search_all({})

    assert [c["id"] for c in after] == [c["id"] for c in before]
    assert after[200]["address"] == "1 New Road"
    assert [c for c in after if c["customerId"] != patched] == [
        c for c in before if c["customerId"] != patched
    ]


async def test_pages_tile_the_whole_ordered_result_without_gaps_or_repeats(api: Api) -> None:
    full = await api.search_all({"customerStatus": "ACTIVE"}, orderBy="legalName")
    pages: list[Customer] = []
    for offset in range(0, len(full) + 7, 7):
        reply = await api.search(
            {"customerStatus": "ACTIVE"},
            params={"offset": offset, "limit": 7, "orderBy": "legalName"},
        )
        assert reply.json["payload"]["recordsCount"] == len(full)
        pages.extend(reply.data)

    assert [c["id"] for c in pages] == [c["id"] for c in full]


async def test_an_offset_past_the_end_gives_an_empty_page_and_the_total(api: Api) -> None:
    reply = await api.search({}, params={"offset": 1000, "limit": 10})

    assert reply.status == 200
    assert reply.data == []
    assert reply.json["payload"]["recordsCount"] == 400


async def test_the_same_search_twice_answers_the_same_bytes(api: Api) -> None:
    params = {"offset": 20, "limit": 30, "orderBy": "state", "direction": "DESC"}

    first = await api.search({"level": "LEVEL_3"}, params=params)
    second = await api.search({"level": "LEVEL_3"}, params=params)

    assert first.body == second.body


async def test_created_customers_are_found_by_search(api: Api, valid_body: dict) -> None:
    await api.create(valid_body)
    await api.create(valid_body)

    data = await api.search_all({"uniqueRefNo": valid_body["uniqueRefNo"]})

    assert [c["id"] for c in data] == [401, 402]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 5001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": -5}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "1.5"}, "offset"),
        ({"direction": "asc"}, "direction"),
        ({"direction": "UP"}, "direction"),
        ({"orderBy": "nope"}, "orderBy"),
        ({"orderBy": "customerKeyContacts"}, "orderBy"),
        ({"orderBy": "legal_name"}, "orderBy"),
    ],
)
async def test_bad_paging_parameters_are_validation_errors(
    api: Api, params: dict[str, Any], field: str
) -> None:
    reply = await api.search({}, params=params)

    assert reply.status == 400
    assert reply.error["errorType"] == "VALIDATION_ERROR"
    assert list(reply.sub_errors) == [field]


async def test_limit_5000_is_allowed(api: Api) -> None:
    reply = await api.search({}, params={"limit": 5000})

    assert reply.status == 200
    assert len(reply.data) == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dsoFrom": "10"}, "dsoFrom"),
        ({"balanceAmount": "100"}, "balanceAmount"),
        ({"customerIds": "KC123"}, "customerIds"),
        ({"customerIds": [1]}, "customerIds[0]"),
        ({"customerStatus": "active"}, "customerStatus"),
        ({"level": "LEVEL_4"}, "level"),
        ({"createdOnFrom": "yesterday"}, "createdOnFrom"),
        ({"modifiedOn": "2025-01-01"}, "modifiedOn"),
        ({"selectAll": "yes"}, "selectAll"),
        ({"name": "Acme"}, "name"),
    ],
)
async def test_bad_filter_fields_are_validation_errors(
    api: Api, body: dict[str, Any], field: str
) -> None:
    reply = await api.search(body)

    assert reply.status == 400
    assert reply.error["errorType"] == "VALIDATION_ERROR"
    assert list(reply.sub_errors) == [field]


async def test_a_non_json_filter_is_a_client_request_error(api: Api) -> None:
    reply = await api.search(data=b"legalName=x", headers={"Content-Type": "application/json"})

    assert reply.status == 400
    assert reply.error["errorType"] == "CLIENT_REQUEST_ERROR"


@pytest.mark.enkash_server(customers=6000, seed=5)
async def test_a_5000_record_page_is_served_whole(api: Api) -> None:
    first = await api.search({}, params={"limit": 5000})
    rest = await api.search({}, params={"limit": 5000, "offset": 5000})

    assert len(first.data) == 5000 and len(rest.data) == 1000
    assert first.json["payload"]["recordsCount"] == 6000
    assert first.data[0] == api.server.customers[0]


def test_level_is_derived_from_dso_median_buckets() -> None:
    assert [level_of(d) for d in (None, 0, 30, 31, 60, 61, 400)] == [
        "LEVEL_1",
        "LEVEL_1",
        "LEVEL_1",
        "LEVEL_2",
        "LEVEL_2",
        "LEVEL_3",
        "LEVEL_3",
    ]


def test_the_same_seed_gives_the_same_customers() -> None:
    assert FakeEnkash(customers=50, seed=3).customers == FakeEnkash(customers=50, seed=3).customers


def test_a_different_seed_gives_different_customers() -> None:
    first = FakeEnkash(customers=50, seed=3).customers
    second = FakeEnkash(customers=50, seed=4).customers

    assert [c["customerId"] for c in first] != [c["customerId"] for c in second]
    assert [c["legalName"] for c in first] != [c["legalName"] for c in second]


_MOBILE = re.compile(r"[6-9][0-9]{9}")


@pytest.mark.slow
def test_20k_seeded_customers_are_well_formed() -> None:
    customers = FakeEnkash(customers=20_000, seed=7).customers

    assert [c["id"] for c in customers] == list(range(1, 20_001))
    assert len({c["customerId"] for c in customers}) == 20_000
    assert len({c["companyId"] for c in customers}) == 20_000
    companies = {c["companyId"]: c["legalName"] for c in customers}
    gstins = 0
    for c in customers:
        assert tuple(c) == CUSTOMER_FIELDS
        assert re.fullmatch(r"KC[A-Z0-9]{14}", c["customerId"])
        assert c["uniqueRefNo"] == f"ERP-{c['id']:07d}"
        for field in ("accountNumber", "companyId", "contactNumber", "ifsc", "pinCode"):
            if c[field] is not None:
                assert pattern_problem(field, c[field]) is None, (field, c[field])
        if c["panOrGstin"] is not None:
            assert pan_or_gstin_problem(c["panOrGstin"]) is None
            if len(c["panOrGstin"]) == 15:
                assert is_valid_gstin(c["panOrGstin"])
                gstins += 1
        if c["ifsc"] is not None:
            assert c["bankName"] == BANKS[c["ifsc"][:4]]
        assert 1 <= len(c["customerKeyContacts"]) <= 2
        for contact in c["customerKeyContacts"]:
            assert _MOBILE.fullmatch(contact["mobile"])
            assert pattern_problem("email", contact["email"]) is None
            assert contact["deleted"] == "false"
        assert 0 <= len(c["customerReminders"]) <= 2
        for reminder in c["customerReminders"]:
            assert re.fullmatch(r"\d\d:\d\d", reminder["reminderTime"])
        if c["parentCompanyId"] is not None:
            assert companies[c["parentCompanyId"]] == c["parentLegalName"]
        assert c["modifiedOn"] >= c["createdOn"]
    assert [c["createdOn"] for c in customers] == sorted(c["createdOn"] for c in customers)
    assert gstins > 10_000
    assert 0.8 < sum(c["active"] for c in customers) / 20_000 < 0.97
    assert 0 < sum(c["parentCompanyId"] is not None for c in customers) < 5_000
