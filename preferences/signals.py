"""What preferences tells the other apps. Receivers live in cadence/receivers.py.

Each signal is sent inside the transaction that made the change, with `contact`.
"""

from __future__ import annotations

from django.dispatch import Signal

# A contact confirmed their subscription (double opt-in done).
contact_confirmed = Signal()
# Topics, frequency, language or pause changed; `changes` names the fields that changed.
preferences_changed = Signal()
# A contact left (preference centre, one-click unsubscribe or an ESP report).
contact_unsubscribed = Signal()
# A contact can no longer be mailed (hard bounce, complaint); `reason` says why.
contact_suppressed = Signal()
# Many contacts suppressed at once (contacts_suppress: a batch of ESP events); `contacts`, a list, and
# each contact's `suppression_reason`. Receivers act on the whole list in a few statements.
contacts_suppressed = Signal()
# A pending contact asked to be subscribed (new, or again): the confirmation mail must go out.
confirmation_requested = Signal()
# Marketers invited imported contacts to subscribe (double opt-in): one signal per batch, with
# `invitations`, a list of (contact, ledger event id), and `import_id` ('' for none): the import the
# contacts came in with, one send for the bounce and complaint brake. The invitation mail must go
# out; it is not consent.
invitations_requested = Signal()
# Someone asked for a fresh preference-centre link for a known address; `request_id` makes it one mail.
link_requested = Signal()
# A person on the preference page asked to see their dossier; `request_id` makes it one mail. The mail
# carries a one-time link (preferences/tokens.py, Purpose.DOSSIER): fresh proof of the mailbox.
dossier_requested = Signal()

# A contact's data is being exported. Each receiver returns `(section_name, json_ready_value)` for
# the rows it owns (deliveries, schedule), so the export holds everything without preferences
# importing the other apps.
data_export_collect = Signal()
# A contact is being erased, inside the erasure's transaction. Each receiver strips personal data
# from the rows it owns, keeping what is needed for anonymous counts.
contact_erasing = Signal()
# A prospect became a customer for the first time; `conversion` is the row just recorded
# (messaging fills in how many mails the contact had received).
contact_converted = Signal()
# Marketers or the CRM changed the share of customer or the potential; `changes` names the fields.
contact_profile_changed = Signal()
