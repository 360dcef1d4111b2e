"""One key per mailbox, however the address is spelled: what the signup and link throttles count on."""

from __future__ import annotations

import hashlib

# Providers that ignore dots in the local part, and the name they deliver to.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def _ascii_domain(domain: str) -> str:
    """Return the domain in its ASCII (punycode) form; a domain that cannot be encoded is kept as it is."""
    try:
        return ".".join(label.encode("idna").decode("ascii") if label else "" for label in domain.split("."))
    except UnicodeError:
        return domain


def mailbox_address(email: str) -> str:
    """Return the mailbox an address reaches: lower case, the domain in punycode, a `+tag` dropped, and for
    Gmail the dots of the local part dropped (googlemail.com is gmail.com). `A+x@Gmail.com` -> `a@gmail.com`.

    For counting only: the address stored and mailed is the one the person typed.
    """
    local, at, domain = email.strip().lower().rpartition("@")
    if not at:
        return email.strip().lower()
    domain = _ascii_domain(domain.rstrip("."))
    if not local.startswith('"'):
        local = local.split("+", 1)[0] or local
        if domain in DOTLESS_DOMAINS:
            local, domain = local.replace(".", ""), DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def mailbox_key(email: str) -> str:
    """Return the throttle key of the mailbox `email` reaches (a hash: no address in the cache)."""
    return hashlib.sha256(mailbox_address(email).encode()).hexdigest()[:32]


def domain_key(email: str) -> str:
    """Return the throttle key of the mail domain `email` belongs to (after the same normalisation)."""
    return hashlib.sha256(mailbox_address(email).rpartition("@")[2].encode()).hexdigest()[:32]
