"""The customer lifecycle beyond create and search: update (PATCH with JsonNullable
fields), activate, deactivate, delete, get, and the upsert built on them, against the fake
EnKash over loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import attrs
import pytest

from enkash_async import (
    UNSET,
    CustomerCreate,
    CustomerSearch,
    CustomerStatus,
    CustomerUpdate,
    EnkashClient,
    KeyContactCreate,
    NotFoundError,
    RetryPolicy,
    ValidationError,
    customer_changes,
)
from enkash_async._customers import DEACTIVATE_PATH
from enkash_async.testing import FakeEnkash, Fault
from enkash_async.testing._routes import DEACTIVATE_ROUTE

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.01, max_retry_after=0.01, settle_time=0.0)

WANTED = CustomerCreate(
    legal_name="Acme Traders Pvt Ltd",
    customer_key_contacts=[
        KeyContactCreate(name="Asha", legal_name="Asha Rao", mobile="9876543210")
    ],
    address="1 MG Road",
    unique_ref_no="ERP-1",
)


@pytest.fixture
async def server(start: Callable[..., Awaitable[FakeEnkash]]) -> FakeEnkash:
    return await start()


@pytest.fixture
async def client(server: FakeEnkash) -> AsyncIterator[EnkashClient]:
    async with EnkashClient(server.url, token=server.token, retry=FAST) as c:
        yield c


async def created(client: EnkashClient, wanted: CustomerCreate = WANTED) -> str:
    customer = await client.customers.create(wanted)
    assert customer.customer_id is not None
    return customer.customer_id


# ---- CustomerUpdate: three states per field ----------------------------------------


def test_an_unset_field_is_left_out_of_the_patch() -> None:
    assert CustomerUpdate(address="2 MG Road").to_dict() == {"address": "2 MG Road"}


def test_none_is_sent_as_null_to_clear_a_field() -> None:
    assert CustomerUpdate(address=None).to_dict() == {"address": None}


def test_an_update_with_nothing_set_is_empty_and_falsy() -> None:
    update = CustomerUpdate()
    assert update.to_dict() == {}
    assert not update
    assert update.changed_fields() == ()


def test_an_update_value_is_checked_with_the_create_pattern() -> None:
    with pytest.raises(ValidationError) as caught:
        CustomerUpdate(pin_code="12", ifsc="nope")
    assert sorted(e.path for e in caught.value.errors) == ["ifsc", "pin_code"]


def test_a_legal_name_cannot_be_cleared() -> None:
    with pytest.raises(ValidationError):
        CustomerUpdate(legal_name=None)  # type: ignore[arg-type]


def test_an_update_repr_names_only_what_it_sends() -> None:
    assert repr(CustomerUpdate(state=None)) == "CustomerUpdate(state=None)"


def test_unset_is_falsy_and_says_its_name() -> None:
    assert not UNSET
    assert repr(UNSET) == "UNSET"


# ---- customer_changes --------------------------------------------------------------


async def test_equal_customers_have_no_changes(client: EnkashClient) -> None:
    customer = await client.customers.create(WANTED)
    assert not customer_changes(customer, WANTED)


async def test_changes_name_only_the_fields_that_differ(client: EnkashClient) -> None:
    customer = await client.customers.create(WANTED)
    wanted = attrs.evolve(WANTED, address="2 MG Road", state="KA")
    assert customer_changes(customer, wanted).changed_fields() == ("address", "state")


async def test_a_field_emptied_in_the_wanted_customer_is_cleared(client: EnkashClient) -> None:
    customer = await client.customers.create(WANTED)
    changes = customer_changes(customer, attrs.evolve(WANTED, address=None))
    assert changes.to_dict() == {"address": None}


async def test_a_changed_key_contact_sends_the_whole_list_with_its_id(
    client: EnkashClient,
) -> None:
    customer = await client.customers.create(WANTED)
    contact = KeyContactCreate(name="Asha", legal_name="Asha Rao", mobile="9876500000")
    changes = customer_changes(customer, attrs.evolve(WANTED, customer_key_contacts=[contact]))
    (sent,) = changes.to_dict()["customerKeyContacts"]
    assert sent["mobile"] == "9876500000"
    assert sent["keyContactPersonId"] == customer.customer_key_contacts[0].key_contact_person_id


async def test_patch_only_fields_are_compared_only_when_given(client: EnkashClient) -> None:
    customer = await client.customers.create(WANTED)
    assert not customer_changes(customer, WANTED)
    changes = customer_changes(customer, WANTED, branch_codes=["B1"], assigned_agent="Ravi")
    assert changes.changed_fields() == ("assigned_agent", "branch_codes")


# ---- update, activate, deactivate, delete, get ----------------------------------------


async def test_update_patches_only_the_fields_given(
    client: EnkashClient, server: FakeEnkash
) -> None:
    customer_id = await created(client)
    await client.customers.update(customer_id, CustomerUpdate(state="KA", address=None))
    customer = await client.customers.get(customer_id)
    assert (customer.state, customer.address, customer.legal_name) == (
        "KA",
        None,
        WANTED.legal_name,
    )


async def test_update_is_retried_after_a_server_error(
    client: EnkashClient, server: FakeEnkash
) -> None:
    customer_id = await created(client)
    server.inject(Fault.status(503), route="update", times=2)
    await client.customers.update(customer_id, CustomerUpdate(state="KA"))
    assert (await client.customers.get(customer_id)).state == "KA"
    assert server.stats.requests["update"] == 3


async def test_update_that_was_applied_before_its_reply_was_lost_ends_applied(
    client: EnkashClient, server: FakeEnkash
) -> None:
    customer_id = await created(client)
    server.inject(Fault.after_commit(status=502), route="update", times=1)
    await client.customers.update(customer_id, CustomerUpdate(state="KA"))
    assert (await client.customers.get(customer_id)).state == "KA"


async def test_a_bad_customer_id_is_refused_unsent(
    client: EnkashClient, server: FakeEnkash
) -> None:
    with pytest.raises(ValidationError):
        await client.customers.update("KC123", CustomerUpdate(state="KA"))
    with pytest.raises(ValidationError):
        await client.customers.delete("../customer/search")
    assert server.stats.requests["update"] == server.stats.requests["delete"] == 0


async def test_update_of_an_unknown_customer_is_not_found(client: EnkashClient) -> None:
    with pytest.raises(NotFoundError):
        await client.customers.update("KC0000000000000X", CustomerUpdate(state="KA"))


async def test_deactivate_then_activate_shows_in_search_by_status(client: EnkashClient) -> None:
    customer_id = await created(client)
    await client.customers.deactivate(customer_id)
    inactive = CustomerSearch(customer_status=CustomerStatus.INACTIVE)
    assert [c.customer_id async for c in client.customers.search(inactive)] == [customer_id]
    await client.customers.activate(customer_id)
    assert [c.customer_id async for c in client.customers.search(inactive)] == []
    assert (await client.customers.get(customer_id)).active is True


async def test_deactivate_survives_a_fault_after_it_was_applied(
    client: EnkashClient, server: FakeEnkash
) -> None:
    customer_id = await created(client)
    server.inject(Fault.after_commit(disconnect=True), route="deactivate", times=1)
    await client.customers.deactivate(customer_id)
    assert (await client.customers.get(customer_id)).active is False


async def test_delete_removes_the_customer(client: EnkashClient) -> None:
    customer_id = await created(client)
    await client.customers.delete(customer_id)
    with pytest.raises(NotFoundError):
        await client.customers.get(customer_id)


async def test_a_delete_whose_reply_was_lost_and_whose_retry_finds_it_gone_succeeded(
    client: EnkashClient, server: FakeEnkash
) -> None:
    customer_id = await created(client)
    server.inject(Fault.after_commit(status=502), route="delete", times=1)
    await client.customers.delete(customer_id)
    assert server.stats.requests["delete"] == 2
    with pytest.raises(NotFoundError):
        await client.customers.get(customer_id)


async def test_a_delete_of_a_customer_that_never_existed_is_not_found(
    client: EnkashClient,
) -> None:
    with pytest.raises(NotFoundError):
        await client.customers.delete("KC0000000000000X")


async def test_get_of_an_absent_customer_is_not_found(client: EnkashClient) -> None:
    with pytest.raises(NotFoundError):
        await client.customers.get("KC0000000000000X")


def test_the_client_and_the_fake_agree_on_the_inferred_deactivate_path() -> None:
    assert DEACTIVATE_ROUTE == DEACTIVATE_PATH + "{customerId}"


# ---- upsert ---------------------------------------------------------------------------


async def test_upsert_creates_an_absent_customer(client: EnkashClient) -> None:
    result = await client.customers.upsert(WANTED)
    assert result.outcome == "created"
    assert result.customer.unique_ref_no == "ERP-1"


async def test_upsert_twice_stores_the_customer_once(
    client: EnkashClient, server: FakeEnkash
) -> None:
    await client.customers.upsert(WANTED)
    second = await client.customers.upsert(WANTED)
    assert second.outcome == "unchanged"
    assert server.stats.created == 1
    assert server.stats.requests["update"] == 0


async def test_upsert_of_an_edited_customer_patches_only_what_changed(
    client: EnkashClient, server: FakeEnkash
) -> None:
    await client.customers.upsert(WANTED)
    result = await client.customers.upsert(attrs.evolve(WANTED, address="2 MG Road"))
    assert (result.outcome, result.changed) == ("updated", ("address",))
    assert result.customer.address == "2 MG Road"
    assert (server.stats.created, server.stats.requests["update"]) == (1, 1)


async def test_upsert_with_a_status_toggles_it_when_it_differs(client: EnkashClient) -> None:
    await client.customers.upsert(WANTED)
    result = await client.customers.upsert(WANTED, active=False)
    assert (result.outcome, result.changed) == ("updated", ("active",))
    assert (await client.customers.get(result.customer.customer_id or "")).active is False


async def test_upsert_creates_an_inactive_customer_when_asked(client: EnkashClient) -> None:
    result = await client.customers.upsert(WANTED, active=False, branch_codes=["B1"])
    assert result.outcome == "created"
    stored = await client.customers.get(result.customer.customer_id or "")
    assert (stored.active, stored.branch_codes) == (False, ["B1"])


async def test_upsert_needs_a_unique_ref_no(client: EnkashClient) -> None:
    with pytest.raises(ValidationError):
        await client.customers.upsert(attrs.evolve(WANTED, unique_ref_no=None))


def test_update_json_is_compact_wire_json() -> None:
    body = CustomerUpdate(branch_codes=["B1"], legal_name="X").to_dict()
    assert json.dumps(body) == '{"branchCodes": ["B1"], "legalName": "X"}'


# ---- the fake EnKash ------------------------------------------------------------------


async def test_the_fake_accepts_an_empty_mobile_as_its_documented_pattern_does(
    client: EnkashClient,
) -> None:
    contact = KeyContactCreate(name="Asha", legal_name="Asha Rao", mobile="")
    customer = await client.customers.create(attrs.evolve(WANTED, customer_key_contacts=[contact]))
    assert customer.customer_key_contacts[0].mobile == ""
