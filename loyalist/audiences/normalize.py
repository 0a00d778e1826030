"""Normalising and hashing identifiers the way each ad platform documents it.

Platforms match uploaded SHA-256 hashes against hashes of their own users' data, so a hash is only
useful when the string before hashing is exactly the platform's normal form:

* email (Google Ads Customer Match, Meta, suppression list): whitespace trimmed, lowercased. Google
  additionally documents removing the dots before '@' for gmail.com / googlemail.com addresses.
* phone, Google: E.164 with the leading '+' (``+8613800138000``).
* phone, Meta: digits only, country code included, no '+' and no leading zeros (``8613800138000``).

One function per rule, so tests can pin each against known input -> output vectors.
"""

from __future__ import annotations

import hashlib

import phonenumbers

# Region assumed for numbers written without a country code (the sample retailer is in mainland China).
DEFAULT_REGION = "CN"
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def sha256_hex(value: str) -> str:
    """Lowercase hex SHA-256 of the UTF-8 bytes, the form every platform asks for."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalize_email(email: str | None) -> str | None:
    """Trim and lowercase; None for an empty value or one without exactly one '@' and a dotted domain."""
    if not isinstance(email, str):  # None, or a missing value from a data frame (NaN, NA)
        return None
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "@" in domain or "." not in domain or any(ch.isspace() for ch in value):
        return None
    return value


def normalize_email_google(email: str | None) -> str | None:
    """Google Customer Match: as normalize_email, and no dots in the local part of Gmail addresses."""
    value = normalize_email(email)
    if value is None:
        return None
    local, _, domain = value.partition("@")
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def phone_e164(phone: str | None, region: str = DEFAULT_REGION) -> str | None:
    """E.164 ('+' country code and number) of a valid number, else None (never guess a wrong person)."""
    if not isinstance(phone, str) or not phone.strip():
        return None
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_digits(phone: str | None, region: str = DEFAULT_REGION) -> str | None:
    """Meta: the E.164 digits without '+' (country code included, no leading zeros)."""
    e164 = phone_e164(phone, region)
    return e164[1:] if e164 else None


def hashed(value: str | None) -> str | None:
    return sha256_hex(value) if value else None
