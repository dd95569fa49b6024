"""The fake server's routes: login, create customer and search customers.

:class:`RouteHandlers` is the part of :class:`~enkash_async.testing.FakeEnkash` that
answers a request once the middleware and any fault have let it through; it reads and
writes the server's accounts, tokens and store.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from aiohttp import web

from enkash_async.auth import PasswordCredentials

from ._data import API_USER, BANKS, IdFactory, iso_utc
from ._envelope import SUCCESS_MESSAGE, SubError, success_body
from ._faults import Route
from ._reply import BadBody, Reply, bad_body, error, invalid, json_body
from ._stats import ServerStats
from ._store import Record, Store
from ._validate import validate_create, validate_filter, validate_paging, validate_update

__all__ = [
    "ACTIVATE_ROUTE",
    "CUSTOMER_ROUTE",
    "DEACTIVATE_ROUTE",
    "RouteHandlers",
    "TokenStyle",
    "basic_credentials",
]

# The customer lifecycle's paths (EnKash's fact sheet); deactivate's is inferred from activate's.
CUSTOMER_ROUTE: Final = "/api/v0/customer/{customerId}"
ACTIVATE_ROUTE: Final = "/api/v0/customer/activate/{customerId}"
DEACTIVATE_ROUTE: Final = "/api/v0/customer/deactivate/{customerId}"
_CUSTOMER_ID: Final = re.compile(r"KC[A-Z0-9]{14}")
_PARENT_COMPANY_ID: Final = re.compile(r"CEK[A-Z0-9]{7}")

TokenStyle = Literal["old", "new"]

_PAGE_HEAD: Final = b'{"errorResponse":null,"payload":{"data":['
_PAGE_TAIL: Final = (
    b',"response_code":0,"response_message":' + json.dumps(SUCCESS_MESSAGE).encode() + b"}"
)


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(client id, client secret) from a ``Basic`` Authorization header, or None."""
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except ValueError:  # bad base64 (binascii.Error) or bad UTF-8
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon else None


class RouteHandlers:
    """The route handlers of :class:`~enkash_async.testing.FakeEnkash` (a base class)."""

    stats: ServerStats
    _credentials: PasswordCredentials
    _token_ttl: float
    _token_style: TokenStyle
    _tokens: dict[str, float]
    _failures: Counter[str]
    _ids: IdFactory
    _store: Store
    _created: list[Record]
    _strict: bool
    _default_limit: int

    if TYPE_CHECKING:

        def is_locked(self, username: str) -> bool: ...

    async def _answer(self, route: Route, request: web.Request, *, commit: bool) -> Reply:
        try:
            if route == "token":
                return await self._login(request, commit=commit)
            if route == "create":
                return await self._create(request, commit=commit)
            if route == "search":
                return await self._search(request)
            return await self._change(route, request, commit=commit)
        except BadBody as exc:
            return bad_body(str(exc))

    # ---- POST /oauth/token ---------------------------------------------------------

    async def _login(self, request: web.Request, *, commit: bool) -> Reply:
        form = await request.post()

        def field(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        username = field("username")
        problem, counts = self._login_problem(
            request.headers.get("Authorization", ""),
            client_id=field("clientId"),
            grant_type=field("grant_type"),
            username=username,
            password=field("password"),
        )
        if problem is not None:
            if commit:
                self.stats.failed_logins += 1
                if counts:
                    self._failures[username] += 1
            return error(401, "UNAUTHORIZED", problem)
        token = secrets.token_urlsafe(32)
        if commit:
            self._tokens[token] = time.monotonic() + self._token_ttl
            self._failures.pop(username, None)
            self.stats.logins += 1
        expires_in = int(self._token_ttl)
        if self._token_style == "old":
            payload: dict[str, Any] = {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": expires_in,
            }
        else:
            payload = {"accessToken": token, "tokenType": "bearer", "expiresIn": expires_in}
        return Reply(200, json.dumps(payload).encode())

    def _login_problem(
        self, authorization: str, *, client_id: str, grant_type: str, username: str, password: str
    ) -> tuple[str | None, bool]:
        """Why the login fails (None if it does not), and whether it counts to a lockout."""
        expected = self._credentials
        basic = basic_credentials(authorization)
        if basic is None:
            return "Full authentication is required: send Basic client credentials", False
        if basic != (expected.client_id, expected.client_secret):
            return "Bad client credentials", False
        if client_id != expected.client_id:
            return "clientId is missing or does not match the Basic credentials", False
        if grant_type != "password":
            return f"Unsupported grant type: {grant_type!r}", False
        if self.is_locked(username):
            return "User account is locked", False
        if (username, password) != (expected.username, expected.password):
            return "Bad credentials", True
        return None, False

    # ---- POST /api/v0/customer -----------------------------------------------------

    async def _create(self, request: web.Request, *, commit: bool) -> Reply:
        body = await json_body(request)
        if body is None:
            return bad_body("Required request body is missing")
        if not isinstance(body, dict):
            return bad_body("The request body must be a JSON object")
        problems = validate_create(body, strict=self._strict)
        if problems:
            return invalid(problems)
        wire = self._new_customer(body)
        if commit:
            self._store.add([wire])
            self._created.append(self._store.records[-1])
            self.stats.created += 1
            self.stats.last_created_at = time.monotonic()
            if not self.stats.first_created_at:
                self.stats.first_created_at = self.stats.last_created_at
        return Reply(200, success_body(wire))

    def _new_customer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The ``CustomerResponse`` EnKash makes of a valid ``CustomerCreate``."""
        now = iso_utc(time.time())
        customer_id = self._ids.customer_id()
        user, user_name = API_USER
        contacts = [
            {
                "createdBy": user,
                "createdOn": now,
                "customerId": customer_id,
                "customerName": contact["legalName"],
                "deleted": "true" if contact["deleted"] else "false",
                "email": contact.get("email"),
                "keyContactPersonId": contact.get("keyContactPersonId")
                or self._ids.key_contact_id(),
                "mail_enabled": contact.get("mail_enabled") is True,
                "mobile": contact["mobile"],
                "modifiedBy": user,
                "modifiedOn": now,
                "name": contact["name"],
                "sms_enabled": contact.get("sms_enabled") is True,
                "whatsapp_enabled": contact.get("whatsapp_enabled") is True,
            }
            for contact in body["customerKeyContacts"]
        ]
        reminders = [
            {
                "customerId": customer_id,
                "customerReminderId": reminder.get("customerReminderId") or self._ids.reminder_id(),
                "dueDateDifference": reminder.get("dueDateDifference"),
                "reminderInterval": reminder.get("reminderInterval"),
                # LocalTime "HH:mm:ss" comes back as "HH:mm".
                "reminderTime": (reminder.get("reminderTime") or "")[:5] or None,
                "reminderType": reminder.get("reminderType"),
                "stage": reminder.get("stage"),
            }
            for reminder in body.get("customerReminders") or ()
        ]
        ifsc = body.get("ifsc")
        emails = [c["email"] for c in contacts if c["deleted"] == "false" and c["email"]]
        return {
            "accountNumber": body.get("accountNumber"),
            "active": True,
            "address": body.get("address"),
            "assignedAgent": None,
            "bankName": BANKS.get(ifsc[:4].upper()) if ifsc else None,
            "branchCodes": [],
            "companyId": body.get("companyId"),
            "contactEmail": emails[0] if emails else None,
            "contactNumber": body.get("contactNumber"),
            "createdBy": user,
            "createdByName": user_name,
            "createdOn": now,
            "customerId": customer_id,
            "customerKeyContacts": contacts,
            "customerLogo": None,
            "customerReminders": reminders,
            "dsoMedian": 0,
            "id": self._store.next_id,
            "ifsc": ifsc,
            "legalName": body["legalName"],
            "modifiedBy": user,
            "modifiedByName": user_name,
            "modifiedOn": now,
            "netAmount": 0.0,
            "panOrGstin": body.get("panOrGstin"),
            "parentCompanyId": None,
            "parentLegalName": None,
            "pinCode": body.get("pinCode"),
            "state": body.get("state"),
            "uniqueRefNo": body.get("uniqueRefNo"),
            "warnings": [],
        }

    # ---- POST /api/v0/customer/search ----------------------------------------------

    async def _search(self, request: web.Request) -> Reply:
        paging, problems = validate_paging(request.query, default_limit=self._default_limit)
        body = await json_body(request)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            return bad_body("The request body must be a JSON object")
        problems.extend(validate_filter(body, strict=self._strict))
        if problems:
            return invalid(problems)
        page, total = self._store.search(body, paging)
        data = b",".join([record.body for record in page])
        count = f'],"recordsCount":{total}}}'.encode()
        return Reply(200, b"".join((_PAGE_HEAD, data, count, _PAGE_TAIL)))

    # ---- PATCH, PUT activate/deactivate, DELETE /api/v0/customer/{customerId} -----------

    async def _change(self, route: Route, request: web.Request, *, commit: bool) -> Reply:
        customer_id = request.match_info["customerId"]
        problems = []
        if not _CUSTOMER_ID.fullmatch(customer_id):
            problems.append(SubError("customerId", customer_id, "must match ^KC[A-Z0-9]{14}$"))
        parent = request.query.get("parentCompanyId")
        if parent is not None and not _PARENT_COMPANY_ID.fullmatch(parent):
            problems.append(SubError("parentCompanyId", parent, "must match ^CEK[A-Z0-9]{7}$"))
        body: Any = None
        if route == "update":
            body = await json_body(request)
            if body is None:
                return bad_body("Required request body is missing")
            if not isinstance(body, dict):
                return bad_body("The request body must be a JSON object")
            problems.extend(validate_update(body, strict=self._strict))
            if body.get("customerId") not in (None, customer_id):
                problems.append(
                    SubError("customerId", body["customerId"], "must equal the path's customerId")
                )
        if problems:
            return invalid(problems)
        record = self._store.by_customer_id(customer_id)
        if record is None:
            return error(404, "RECORD_NOT_FOUND", f"Customer not found: {customer_id}")
        if route == "update":
            ref = body.get("uniqueRefNo")
            others = [r for r in self._store.by_unique_ref(ref) if r is not record] if ref else []
            if others:  # [inferred] EnKash's answer to a clash is not documented
                return invalid([SubError("uniqueRefNo", ref, "is used by another customer")])
            wire = self._patched(record.wire, body)
        elif route == "delete":
            if commit:
                self._store.remove(record)
                self.stats.changed[route] += 1
            return Reply(200, success_body("Customer deleted successfully"))
        else:
            wire = {**record.wire, "active": route == "activate"}
        if commit:
            wire["modifiedOn"] = iso_utc(time.time())
            self._store.replace(record, wire)
            self.stats.changed[route] += 1
            if route == "update":
                self.stats.patched_fields.update(name for name in body if name != "customerId")
        return Reply(200, success_body(wire if route == "update" else None))

    def _patched(self, wire: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        """``wire`` with a PATCH applied: an absent key keeps, null clears, a value sets;
        key contacts and reminders replace the stored lists (made as a create makes them)."""
        patched = dict(wire)
        made = self._new_customer(
            {
                "legalName": body.get("legalName") or wire["legalName"],
                "customerKeyContacts": body.get("customerKeyContacts") or [],
                "customerReminders": body.get("customerReminders") or [],
            }
        )
        for name, value in body.items():
            if name == "customerId":
                continue
            if name in ("customerKeyContacts", "customerReminders"):
                lists = [dict(item, customerId=wire["customerId"]) for item in made[name]]
                patched[name] = lists if value is not None else []
            elif name == "branchCodes":
                patched[name] = list(value) if value is not None else []
            else:
                patched[name] = value
        if "customerKeyContacts" in body:
            emails = [
                c["email"]
                for c in patched["customerKeyContacts"]
                if c["deleted"] == "false" and c["email"]
            ]
            patched["contactEmail"] = emails[0] if emails else None
        return patched
