"""The same reply models in pydantic v2, as the OpenAI and GitHub SDKs would write them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class KeyContactModel(_Wire):
    created_by: str | None = Field(None, alias="createdBy")
    created_on: dt.datetime | None = Field(None, alias="createdOn")
    customer_id: str | None = Field(None, alias="customerId")
    customer_name: str | None = Field(None, alias="customerName")
    deleted: bool | str | None = None
    email: str | None = None
    key_contact_person_id: str | None = Field(None, alias="keyContactPersonId")
    mail_enabled: bool | None = None
    mobile: str | None = None
    modified_by: str | None = Field(None, alias="modifiedBy")
    modified_on: dt.datetime | None = Field(None, alias="modifiedOn")
    name: str | None = None
    sms_enabled: bool | None = None
    whatsapp_enabled: bool | None = None


class ReminderModel(_Wire):
    customer_id: str | None = Field(None, alias="customerId")
    customer_reminder_id: str | None = Field(None, alias="customerReminderId")
    due_date_difference: int | None = Field(None, alias="dueDateDifference")
    reminder_interval: int | None = Field(None, alias="reminderInterval")
    reminder_time: dt.time | str | None = Field(None, alias="reminderTime")
    reminder_type: str | None = Field(None, alias="reminderType")
    stage: str | None = None


class CustomerModel(_Wire):
    account_number: str | None = Field(None, alias="accountNumber")
    active: bool | None = None
    address: str | None = None
    assigned_agent: str | None = Field(None, alias="assignedAgent")
    bank_name: str | None = Field(None, alias="bankName")
    branch_codes: list[str] | None = Field(None, alias="branchCodes")
    company_id: str | None = Field(None, alias="companyId")
    contact_email: str | None = Field(None, alias="contactEmail")
    contact_number: str | None = Field(None, alias="contactNumber")
    created_by: str | None = Field(None, alias="createdBy")
    created_by_name: str | None = Field(None, alias="createdByName")
    created_on: dt.datetime | None = Field(None, alias="createdOn")
    customer_id: str | None = Field(None, alias="customerId")
    customer_key_contacts: list[KeyContactModel] | None = Field(None, alias="customerKeyContacts")
    customer_logo: str | None = Field(None, alias="customerLogo")
    customer_reminders: list[ReminderModel] | None = Field(None, alias="customerReminders")
    dso_median: int | None = Field(None, alias="dsoMedian")
    id: int | None = None
    ifsc: str | None = None
    legal_name: str | None = Field(None, alias="legalName")
    modified_by: str | None = Field(None, alias="modifiedBy")
    modified_by_name: str | None = Field(None, alias="modifiedByName")
    modified_on: dt.datetime | None = Field(None, alias="modifiedOn")
    net_amount: Decimal | None = Field(None, alias="netAmount")
    pan_or_gstin: str | None = Field(None, alias="panOrGstin")
    parent_company_id: str | None = Field(None, alias="parentCompanyId")
    parent_legal_name: str | None = Field(None, alias="parentLegalName")
    pin_code: str | None = Field(None, alias="pinCode")
    state: str | None = None
    unique_ref_no: str | None = Field(None, alias="uniqueRefNo")
    warnings: list[str] | None = None
