"""Cadence policy by potential: which frequencies a contact may get.

The cadence engine calls `effective_frequency(contact)` when it computes the next slot; the signup
form and the preference centre offer only `allowed_frequencies(contact)`.

"Welcome series only" still means the least frequent configured cadence after the welcome series:
a confirmed subscriber is never left silent, the policy only spends less on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from preferences.frequencies import Frequency, frequencies, get_frequency
from preferences.models import CadencePolicy, Contact

Policies = Mapping[str, CadencePolicy]


def load_policies() -> dict[str, CadencePolicy]:
    """Return every policy by potential (one query; pass it on when deciding for many contacts)."""
    return {policy.potential: policy for policy in CadencePolicy.objects.all()}


def allowed_for_potential(potential: str, policies: Policies | None = None) -> list[Frequency]:
    """Return the frequencies a contact of `potential` may get, most frequent first; never empty."""
    options = frequencies()
    policy = CadencePolicy.objects.filter(potential=potential).first() if policies is None else policies.get(potential)
    if policy is None:
        return options
    if policy.welcome_only:
        return [options[-1]]
    if policy.max_frequency:
        ceiling = get_frequency(policy.max_frequency)
        allowed = [f for f in options if f.days >= ceiling.days]
        return allowed or [options[-1]]
    return options


def allowed_frequencies(contact: Contact, policies: Policies | None = None) -> list[Frequency]:
    """Return the frequencies `contact` may choose or get, most frequent first; never empty."""
    return allowed_for_potential(contact.potential, policies)


def effective_frequency(contact: Contact, policies: Policies | None = None) -> Frequency:
    """Return the frequency the cadence engine applies: the contact's choice, capped by the policy.

    A choice more frequent than the policy allows becomes the most frequent allowed one; a choice
    less frequent than that is kept ("never more than chosen").
    """
    return _effective(get_frequency(contact.frequency), allowed_for_potential(contact.potential, policies))


def _effective(chosen: Frequency, allowed: list[Frequency]) -> Frequency:
    if chosen in allowed:
        return chosen
    if chosen.days < allowed[0].days:
        return allowed[0]
    return chosen


def effective_table(policies: Policies | None = None) -> list[tuple[str, str, Frequency]]:
    """Return `effective_frequency` as a table, (frequency chosen, potential, frequency applied) for every
    frequency offered and every potential: what the SQL claim and the silence guard's filter read, so
    the rule is written once, here."""
    policies = load_policies() if policies is None else policies
    table: list[tuple[str, str, Frequency]] = []
    for potential in Contact.Potential.values:
        allowed = allowed_for_potential(potential, policies)
        table.extend((frequency.key, potential, _effective(frequency, allowed)) for frequency in frequencies())
    return table


def allowed_choices(contact: Contact | None = None, potential: str = "") -> list[tuple[str, str]]:
    """Return (key, label) pairs for a form: what the contact (or a new one of `potential`) may choose."""
    if contact is not None:
        options = allowed_frequencies(contact)
    else:
        options = allowed_for_potential(potential or Contact._meta.get_field("potential").default)
    return [(f.key, f.label) for f in options]


@dataclass(frozen=True)
class PolicyLimit:
    """What a policy does to a contact's frequency, for the page to say in plain words."""

    chosen: Frequency
    applied: Frequency
    offered: list[Frequency]

    @property
    def changes_the_choice(self) -> bool:
        return self.chosen != self.applied


def policy_limit(contact: Contact, policies: Policies | None = None) -> PolicyLimit | None:
    """Return how a policy limits the contact's frequencies, or None when every frequency is offered."""
    offered = allowed_frequencies(contact, policies)
    if offered == frequencies():
        return None
    return PolicyLimit(
        chosen=get_frequency(contact.frequency), applied=effective_frequency(contact, policies), offered=offered
    )
