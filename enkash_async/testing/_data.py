"""Reply field lists, identifiers and deterministic synthetic customers.

Synthetic customers look like an Indian receivables ledger: company names, GSTINs with a
correct check character (or PANs), IFSCs of real bank codes, 6-digit PINs of the right
state, key contacts with 10-digit mobiles starting 6-9, and ``ERP-0000042`` reference
numbers. The same ``seed`` always yields the same customers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any, Final, Literal

from enkash_async._validation import gstin_check_character

__all__ = [
    "API_USER",
    "BANKS",
    "CUSTOMER_FIELDS",
    "KEY_CONTACT_FIELDS",
    "LEVELS",
    "REMINDER_FIELDS",
    "IdFactory",
    "Level",
    "iso_utc",
    "level_of",
    "synthesize",
    "synthetic_customers",
]

#: The 31 fields of ``CustomerResponse``, in the order EnKash writes them.
CUSTOMER_FIELDS: Final[tuple[str, ...]] = (
    "accountNumber",
    "active",
    "address",
    "assignedAgent",
    "bankName",
    "branchCodes",
    "companyId",
    "contactEmail",
    "contactNumber",
    "createdBy",
    "createdByName",
    "createdOn",
    "customerId",
    "customerKeyContacts",
    "customerLogo",
    "customerReminders",
    "dsoMedian",
    "id",
    "ifsc",
    "legalName",
    "modifiedBy",
    "modifiedByName",
    "modifiedOn",
    "netAmount",
    "panOrGstin",
    "parentCompanyId",
    "parentLegalName",
    "pinCode",
    "state",
    "uniqueRefNo",
    "warnings",
)

#: The 14 fields of ``CustomerKeyContactResponse`` (``deleted`` is a string there).
KEY_CONTACT_FIELDS: Final[tuple[str, ...]] = (
    "createdBy",
    "createdOn",
    "customerId",
    "customerName",
    "deleted",
    "email",
    "keyContactPersonId",
    "mail_enabled",
    "mobile",
    "modifiedBy",
    "modifiedOn",
    "name",
    "sms_enabled",
    "whatsapp_enabled",
)

#: The 7 fields of ``CustomerReminderConfigResponse``.
REMINDER_FIELDS: Final[tuple[str, ...]] = (
    "customerId",
    "customerReminderId",
    "dueDateDifference",
    "reminderInterval",
    "reminderTime",
    "reminderType",
    "stage",
)

Level = Literal["LEVEL_1", "LEVEL_2", "LEVEL_3"]
LEVELS: Final[tuple[Level, ...]] = ("LEVEL_1", "LEVEL_2", "LEVEL_3")


def level_of(dso_median: int | None) -> Level:
    """The search ``level`` of a customer, from its ``dsoMedian`` (days sales outstanding).

    LEVEL_1: up to 30 days (or unknown), LEVEL_2: 31 to 60 days, LEVEL_3: over 60 days.
    EnKash does not document the rule; this one is the fake server's.
    """
    if dso_median is None or dso_median <= 30:
        return "LEVEL_1"
    if dso_median <= 60:
        return "LEVEL_2"
    return "LEVEL_3"


def iso_utc(epoch: float) -> str:
    """``2026-11-23T10:15:30Z`` for a Unix time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


#: The user every API call acts as: (createdBy, createdByName).
API_USER: Final = ("EKU0000042", "API Integration")

#: IFSC bank code -> bank name, for ``bankName``.
BANKS: Final[dict[str, str]] = {
    "HDFC": "HDFC Bank",
    "ICIC": "ICICI Bank",
    "SBIN": "State Bank of India",
    "UTIB": "Axis Bank",
    "KKBK": "Kotak Mahindra Bank",
    "PUNB": "Punjab National Bank",
    "BARB": "Bank of Baroda",
    "CNRB": "Canara Bank",
    "UBIN": "Union Bank of India",
    "IDIB": "Indian Bank",
    "YESB": "Yes Bank",
    "INDB": "IndusInd Bank",
    "IDFB": "IDFC FIRST Bank",
    "FDRL": "Federal Bank",
}

_ALNUM: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# (state, GST state code, PIN prefixes, cities)
_STATES: Final[tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...]] = (
    ("Maharashtra", "27", ("400", "411", "440", "431"), ("Mumbai", "Pune", "Nagpur", "Nashik")),
    ("Karnataka", "29", ("560", "570", "580"), ("Bengaluru", "Mysuru", "Hubballi")),
    ("Delhi", "07", ("110",), ("New Delhi", "Delhi")),
    ("Tamil Nadu", "33", ("600", "641", "625"), ("Chennai", "Coimbatore", "Madurai")),
    ("Gujarat", "24", ("380", "395", "390"), ("Ahmedabad", "Surat", "Vadodara")),
    ("Telangana", "36", ("500",), ("Hyderabad", "Secunderabad")),
    ("Uttar Pradesh", "09", ("201", "226", "208"), ("Noida", "Lucknow", "Kanpur")),
    ("West Bengal", "19", ("700", "711"), ("Kolkata", "Howrah")),
    ("Rajasthan", "08", ("302", "342", "313"), ("Jaipur", "Jodhpur", "Udaipur")),
    ("Kerala", "32", ("682", "695"), ("Kochi", "Thiruvananthapuram")),
    ("Haryana", "06", ("122", "121"), ("Gurugram", "Faridabad")),
    ("Punjab", "03", ("141", "143"), ("Ludhiana", "Amritsar")),
    ("Madhya Pradesh", "23", ("452", "462"), ("Indore", "Bhopal")),
    ("Odisha", "21", ("751",), ("Bhubaneswar",)),
    ("Bihar", "10", ("800",), ("Patna",)),
    ("Andhra Pradesh", "37", ("520", "530"), ("Vijayawada", "Visakhapatnam")),
    ("Goa", "30", ("403",), ("Panaji", "Margao")),
)

_NAME_HEADS: Final = (
    "Shree Ganesh",
    "Sai",
    "Bharat",
    "Kaveri",
    "Sahyadri",
    "Ganga",
    "Vijay",
    "Lakshmi",
    "Om",
    "Arihant",
    "Mahalaxmi",
    "Surya",
    "Tirupati",
    "Krishna",
    "Annapurna",
    "Navratna",
    "Patel",
    "Agarwal",
    "Mehta",
    "Reddy",
    "Iyer",
    "Malhotra",
    "Kapoor",
    "Desai",
    "Jain",
    "Balaji",
    "Siddhi Vinayak",
    "Narmada",
    "Himalaya",
    "Deccan",
    "Konkan",
    "Coromandel",
    "Indus",
    "Vedanta",
    "Aarav",
    "Saraswati",
    "Jyoti",
    "Kalyan",
    "Pragati",
    "Uday",
)
_NAME_TRADES: Final = (
    "Textiles",
    "Traders",
    "Steel",
    "Pharma",
    "Enterprises",
    "Agro Foods",
    "Logistics",
    "Infotech",
    "Engineering Works",
    "Polymers",
    "Auto Components",
    "Electricals",
    "Chemicals",
    "Handlooms",
    "Spices",
    "Builders",
    "Paper Mills",
    "Ceramics",
    "Dairy",
    "Packaging",
    "Software",
    "Distributors",
    "Tea Estates",
    "Plastics",
    "Castings",
)
# (legal-form suffix, the PAN 4th character that form carries)
_NAME_FORMS: Final = (
    ("Private Limited", "C"),
    ("Pvt Ltd", "C"),
    ("Limited", "C"),
    ("LLP", "F"),
    ("& Co.", "F"),
    ("& Sons", "F"),
    ("Industries", "C"),
    ("Trading Company", "F"),
)
_FIRST_NAMES: Final = (
    "Aarav",
    "Vivaan",
    "Aditya",
    "Arjun",
    "Rohan",
    "Rahul",
    "Vikram",
    "Karan",
    "Siddharth",
    "Ananya",
    "Priya",
    "Diya",
    "Isha",
    "Kavya",
    "Meera",
    "Neha",
    "Pooja",
    "Riya",
    "Sneha",
    "Amit",
    "Sanjay",
    "Suresh",
    "Ramesh",
    "Deepak",
    "Nikhil",
    "Lakshmi",
    "Divya",
    "Anjali",
)
_LAST_NAMES: Final = (
    "Sharma",
    "Verma",
    "Gupta",
    "Patel",
    "Reddy",
    "Iyer",
    "Nair",
    "Menon",
    "Rao",
    "Singh",
    "Kumar",
    "Joshi",
    "Kulkarni",
    "Deshpande",
    "Chatterjee",
    "Banerjee",
    "Das",
    "Mehta",
    "Shah",
    "Agarwal",
    "Pillai",
    "Bhat",
    "Naidu",
    "Chauhan",
    "Malhotra",
    "Saxena",
)
_STREETS: Final = (
    "MG Road",
    "Station Road",
    "Link Road",
    "Ring Road",
    "Industrial Estate",
    "Nehru Nagar",
    "Gandhi Chowk",
    "Market Yard",
    "MIDC Phase 2",
    "Sector 18",
    "Park Street",
    "Anna Salai",
)
_STAFF: Final = (
    ("EKU0000101", "Priya Sharma"),
    ("EKU0000102", "Rahul Verma"),
    ("EKU0000103", "Anjali Nair"),
    ("EKU0000104", "Vikram Rao"),
    ("EKU0000105", "Sneha Kulkarni"),
    ("EKU0000106", "Arjun Mehta"),
    ("EKU0000107", "Kavya Iyer"),
    ("EKU0000108", "Deepak Singh"),
)
_AGENTS: Final = (
    "Amit Joshi",
    "Neha Gupta",
    "Suresh Pillai",
    "Meera Shah",
    "Karan Malhotra",
    "Divya Reddy",
    "Rohan Das",
    "Pooja Chauhan",
    "Nikhil Bhat",
    "Isha Saxena",
)
_REMINDER_TIMES: Final = ("09:00", "09:30", "10:00", "11:00", "12:30", "15:00", "17:30")
_DUE_DIFFERENCES: Final = (-15, -7, -3, -1, 0, 1, 3, 7, 15, 30)
# Reminder stage by the sign of the due-date difference: 0, +1, -1.
_STAGES: Final = ("ON_DUE", "AFTER_DUE", "BEFORE_DUE")

# Synthetic creation times fall in 2023-2025, so API-created customers sort after them.
_START: Final = 1_672_531_200  # 2023-01-01T00:00:00Z
_SPAN: Final = 1_767_139_200 - _START  # up to 2025-12-31T00:00:00Z
_COMPANY_SPACE: Final = 36**7


class IdFactory:
    """Identifiers the fake server hands out: unique, and deterministic under ``seed``."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"enkash-fake-ids:{seed}")
        self._issued: set[str] = set()
        self._key_contacts = 0
        self._reminders = 0

    def customer_id(self) -> str:
        """A new ``customerId``: ``KC`` and 14 upper-case letters or digits."""
        while True:
            candidate = "KC" + _base36(self._rng.getrandbits(80), 7)
            if candidate not in self._issued:
                self._issued.add(candidate)
                return candidate

    def key_contact_id(self) -> str:
        """A new ``keyContactPersonId``."""
        self._key_contacts += 1
        return f"KCP{self._key_contacts:011d}"

    def reminder_id(self) -> str:
        """A new ``customerReminderId``."""
        self._reminders += 1
        return f"CRM{self._reminders:011d}"


_PAIRS: Final = tuple(a + b for a in _ALNUM for b in _ALNUM)
_LETTER_TRIPLES: Final = tuple(a + b + c for a in _LETTERS for b in _LETTERS for c in _LETTERS)


def _base36(number: int, pairs: int) -> str:
    # Two characters per step: a 1296-entry table keeps seeding 100k customers fast.
    chars = []
    for _ in range(pairs):
        number, pair = divmod(number, 1296)
        chars.append(_PAIRS[pair])
    return "".join(chars)


def _company_id(index: int, offset: int) -> str:
    # An affine map modulo 36**7 is a bijection, so every index gets a distinct id.
    number = (index * 1_000_003 + offset) % _COMPANY_SPACE
    return "CEK" + _base36(number, 4)[1:]


def synthetic_customers(count: int, seed: int, chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """``count`` synthetic ``CustomerResponse`` wire dicts, made ``chunk`` at a time so a
    large count is never held in memory at once."""
    ids = IdFactory(seed)
    for start in range(0, count, chunk):
        yield from synthesize(min(chunk, count - start), seed * 1_000_003 + start, ids, start + 1)


def synthesize(count: int, seed: int, ids: IdFactory, first_id: int = 1) -> list[dict[str, Any]]:
    """``count`` customers as ``CustomerResponse`` wire dicts, ids from ``first_id`` up.

    Run it under :func:`enkash_async._fast.paused_gc` for large counts: the new
    containers would otherwise set off the cyclic GC again and again (about half the time
    for 100,000 customers).
    """
    rng = random.Random(f"enkash-fake-data:{seed}")
    rand = rng.random
    company_offset = rng.randrange(_COMPANY_SPACE)
    # Sorted times make ``id`` order and ``createdOn`` order agree, as in a real ledger.
    created_times = sorted(_START + int(rand() * _SPAN) for _ in range(count))
    # Whole columns drawn at once: far cheaper than one call per customer and field.
    states = rng.choices(_STATES, k=count)
    heads = rng.choices(_NAME_HEADS, k=count)
    trades = rng.choices(_NAME_TRADES, k=count)
    forms = rng.choices(_NAME_FORMS, k=count)
    banks = rng.choices(tuple(BANKS.items()), k=count)
    creators = rng.choices(_STAFF, k=count)
    modifiers = rng.choices(_STAFF, k=count)
    agents = rng.choices(_AGENTS, k=count)
    streets = rng.choices(_STREETS, k=count)
    firsts = rng.choices(_FIRST_NAMES, k=2 * count)
    lasts = rng.choices(_LAST_NAMES, k=2 * count)
    pan_letters = rng.choices(_LETTER_TRIPLES, k=count)
    customers: list[dict[str, Any]] = []
    append = customers.append

    def pick(options: tuple[Any, ...]) -> Any:
        return options[int(rand() * len(options))]

    for index in range(count):
        number = first_id + index
        created = created_times[index]
        modified = created if rand() < 0.5 else created + int(rand() * (_START + _SPAN - created))
        created_on = iso_utc(created)
        modified_on = iso_utc(modified)
        customer_id = ids.customer_id()
        state, gst_code, pin_prefixes, cities = states[index]
        head = heads[index]
        form, pan_kind = forms[index]
        legal_name = f"{head} {trades[index]} {form}"
        domain = head.replace(" ", "").lower() + ("" if rand() < 0.5 else "group") + ".in"

        pan = (
            f"{pan_letters[index]}{pan_kind}{head[0]}"
            f"{int(rand() * 10_000):04d}{_LETTERS[int(rand() * 26)]}"
        )
        draw = rand()
        pan_or_gstin: str | None
        if draw < 0.72:
            first14 = gst_code + pan + "123"[int(rand() * 3)] + "Z"
            pan_or_gstin = first14 + gstin_check_character(first14)
        elif draw < 0.92:
            pan_or_gstin = pan
        else:
            pan_or_gstin = None

        if rand() < 0.85:
            bank_code, bank_name = banks[index]
            ifsc: str | None = f"{bank_code}0{int(rand() * 1_000_000):06d}"
            account: str | None = str(10**8 + int(rand() * (10**16 - 10**8)))
            bank: str | None = bank_name
        else:
            ifsc = account = bank = None

        creator, creator_name = creators[index]
        modifier, modifier_name = modifiers[index] if modified != created else creators[index]
        contacts: list[dict[str, Any]] = []
        for slot in range(2 * index, 2 * index + (1 if rand() < 0.7 else 2)):
            first, last = firsts[slot], lasts[slot]
            contacts.append(
                {
                    "createdBy": creator,
                    "createdOn": created_on,
                    "customerId": customer_id,
                    "customerName": legal_name,
                    "deleted": "false",
                    "email": f"{first.lower()}.{last.lower()}@{domain}",
                    "keyContactPersonId": ids.key_contact_id(),
                    "mail_enabled": rand() < 0.8,
                    "mobile": f"{6 + int(rand() * 4)}{int(rand() * 1e9):09d}",
                    "modifiedBy": modifier,
                    "modifiedOn": modified_on,
                    "name": f"{first} {last}",
                    "sms_enabled": rand() < 0.5,
                    "whatsapp_enabled": rand() < 0.6,
                }
            )

        reminders: list[dict[str, Any]] = []
        draw = rand()
        for _ in range(0 if draw < 0.4 else 1 if draw < 0.8 else 2):
            difference = pick(_DUE_DIFFERENCES)
            recurring = rand() < 0.4
            reminders.append(
                {
                    "customerId": customer_id,
                    "customerReminderId": ids.reminder_id(),
                    "dueDateDifference": difference,
                    "reminderInterval": pick((1, 3, 7)) if recurring else 0,
                    "reminderTime": pick(_REMINDER_TIMES),
                    "reminderType": "RECURRING" if recurring else "ONCE",
                    "stage": _STAGES[(difference > 0) - (difference < 0)],
                }
            )

        draw = rand()
        contact_number: str | None
        mobile = contacts[0]["mobile"]
        if draw < 0.5:
            contact_number = mobile
        elif draw < 0.7:
            contact_number = "+91 " + mobile
        elif draw < 0.8:
            contact_number = "+91-" + mobile
        else:
            contact_number = None

        parent_id = parent_name = None
        # About one in eight customers belongs to a group headed by an earlier customer.
        if index >= 10 and rand() < 0.125:
            parent = customers[int(rand() * index)]
            parent_id, parent_name = parent["companyId"], parent["legalName"]

        dso = int(rand() ** 1.5 * 120)
        append(
            {
                "accountNumber": account,
                "active": rand() < 0.9,
                "address": f"{1 + int(rand() * 400)}, {streets[index]}, {pick(cities)}",
                "assignedAgent": agents[index] if rand() < 0.8 else None,
                "bankName": bank,
                "branchCodes": [f"BR{int(rand() * 1000):03d}"] if rand() < 0.2 else [],
                "companyId": _company_id(index, company_offset),
                "contactEmail": contacts[0]["email"],
                "contactNumber": contact_number,
                "createdBy": creator,
                "createdByName": creator_name,
                "createdOn": created_on,
                "customerId": customer_id,
                "customerKeyContacts": contacts,
                "customerLogo": None,
                "customerReminders": reminders,
                "dsoMedian": dso,
                "id": number,
                "ifsc": ifsc,
                "legalName": legal_name,
                "modifiedBy": modifier,
                "modifiedByName": modifier_name,
                "modifiedOn": modified_on,
                "netAmount": round(rand() ** 3 * 5_000_000, 2),
                "panOrGstin": pan_or_gstin,
                "parentCompanyId": parent_id,
                "parentLegalName": parent_name,
                "pinCode": pick(pin_prefixes) + f"{int(rand() * 1000):03d}",
                "state": state,
                "uniqueRefNo": f"ERP-{number:07d}",
                "warnings": [],
            }
        )
    return customers
