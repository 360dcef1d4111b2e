from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from preferences import addresshash
from preferences.validators import refuse_control_characters


def new_token_secret() -> str:
    return secrets.token_urlsafe(16)


class Locale(models.TextChoices):
    EN = "en", "English"
    NL = "nl", "Nederlands"


class Topic(models.Model):
    slug = models.SlugField(unique=True, verbose_name=_("short name (in links)"))
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_nl = models.CharField(_("name (Dutch)"), max_length=100)
    description_en = models.TextField(_("description (English)"), blank=True)
    description_nl = models.TextField(_("description (Dutch)"), blank=True)
    is_active = models.BooleanField(_("offered on the preference centre"), default=True)
    position = models.PositiveSmallIntegerField(default=0, verbose_name=_("position"))

    class Meta:
        ordering = ["position", "slug"]
        verbose_name = _("topic")
        verbose_name_plural = _("topics")

    def __str__(self) -> str:
        return self.name_en

    def name(self, locale: str) -> str:
        return self.name_nl if locale == Locale.NL else self.name_en

    def description(self, locale: str) -> str:
        return self.description_nl if locale == Locale.NL else self.description_en


class Lifecycle(models.TextChoices):
    """Where a contact stands, derived from the share of customer (never stored)."""

    PROSPECT = "prospect", _("prospect")
    CUSTOMER = "customer", _("customer")
    FORMER_CUSTOMER = "former_customer", _("former customer")

    @classmethod
    def q(cls, value: str) -> Q:
        """Return the filter that selects contacts in lifecycle `value`."""
        if value == cls.CUSTOMER:
            return Q(share_of_customer__gt=0)
        if value == cls.FORMER_CUSTOMER:
            return Q(share_of_customer=0, former_customer_at__isnull=False)
        return Q(share_of_customer=0, former_customer_at__isnull=True)


class ContactQuerySet(models.QuerySet["Contact"]):
    def marketable(self, now: datetime | None = None) -> ContactQuerySet:
        """Return the contacts who may get a marketing mail now (`marketable_q`)."""
        return self.filter(marketable_q(now or timezone.now()))

    def addressable(self) -> ContactQuerySet:
        """Return the contacts with a valid address: not suppressed (bounced, complained, erased)."""
        return self.filter(suppressed_at__isnull=True)


class Contact(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending confirmation")
        CONFIRMED = "confirmed", _("confirmed")
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed")

    class Potential(models.TextChoices):
        HIGH = "high", _("high")
        MEDIUM = "medium", _("medium")
        LOW = "low", _("low")
        NONE = "none", _("none")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("contact id"))
    email = models.EmailField(_("email address"), max_length=254, unique=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True, validators=[refuse_control_characters])
    locale = models.CharField(_("language"), max_length=2, choices=Locale.choices, default=Locale.NL)
    time_zone = models.CharField(_("time zone"), max_length=64, default=settings.DEFAULT_CONTACT_TIMEZONE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, verbose_name=_("status"))
    topics = models.ManyToManyField(Topic, blank=True, related_name="contacts", verbose_name=_("topics"))
    # No topics means nothing unless the person chose "general updates" in so many words.
    general_updates = models.BooleanField(_("general updates"), default=False)
    frequency = models.CharField(_("frequency"), max_length=32, default=settings.CADENCE_DEFAULT_FREQUENCY)
    paused_until = models.DateTimeField(_("paused until"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=100, blank=True)
    external_id = models.CharField(_("CRM id"), max_length=100, null=True, blank=True, unique=True)
    share_of_customer = models.PositiveSmallIntegerField(_("share of customer (%)"), default=0)
    potential = models.CharField(_("potential"), max_length=8, choices=Potential.choices, default=Potential.MEDIUM)
    suppressed_at = models.DateTimeField(_("suppressed at"), null=True, blank=True)
    suppression_reason = models.CharField(_("suppression reason"), max_length=32, blank=True)
    # Service messages (renewal and end-date reminders) are not marketing, but may be declined.
    service_reminders = models.BooleanField(_("service reminders"), default=True)
    # Rotating the secret invalidates every link ever sent to this contact.
    token_secret = models.CharField(
        max_length=64, default=new_token_secret, editable=False, verbose_name=_("link secret")
    )
    # Bumped to revoke the preference, confirmation and dossier links sent so far (preferences/tokens.py):
    # "sign out everywhere" and each new link asked for on /link/.
    token_version = models.PositiveIntegerField(default=0, db_default=0, editable=False, verbose_name=_("link version"))
    # Bumped when a dossier link is used: each one works once.
    dossier_version = models.PositiveIntegerField(
        default=0, db_default=0, editable=False, verbose_name=_("dossier link version")
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    confirmed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("confirmed at"))
    unsubscribed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("unsubscribed at"))
    # Set when the share of customer drops from above 0 back to 0 (products ended); cleared on a new purchase.
    former_customer_at = models.DateTimeField(_("former customer since"), null=True, blank=True)

    objects = ContactQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        # Each bulk or data-rights door of the admin has its own permission (preferences/roles.py).
        permissions = [
            ("sync_contacts", "Can sync contacts through the CRM API"),
            ("import_contact", "Can import contacts from a file"),
            ("export_contact", "Can export the contact list to a file"),
            ("invite_contact", "Can invite contacts to confirm (mails them)"),
            ("export_dossier", "Can export a contact's personal data (data rights)"),
            ("erase_contact", "Can erase a contact's personal data (data rights)"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="contact_status_created"),
            models.Index(fields=["share_of_customer", "potential"], name="contact_share_potential"),
            # The admin list is ordered by -created_at; each filter has an index that serves that order.
            models.Index(fields=["created_at"], name="contact_created"),
            models.Index(fields=["potential", "created_at"], name="contact_potential_created"),
            models.Index(fields=["locale", "created_at"], name="contact_locale_created"),
            models.Index(fields=["frequency", "created_at"], name="contact_frequency_created"),
            models.Index(fields=["source", "created_at"], name="contact_source_created"),
            models.Index(fields=["created_at"], name="contact_prospect_created", condition=Q(share_of_customer=0)),
            models.Index(fields=["created_at"], name="contact_customer_created", condition=Q(share_of_customer__gt=0)),
            models.Index(
                fields=["created_at"],
                name="contact_former_created",
                condition=Q(share_of_customer=0, former_customer_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(share_of_customer__lte=100), name="contact_share_max_100"),
        ]

    def __str__(self) -> str:
        # The admin names a contact by address on its pages and lists; its change log does not
        # (preferences/admin_log.py), so an erasure leaves no address there.
        return self.email

    @property
    def is_prospect(self) -> bool:
        return self.share_of_customer == 0

    @property
    def lifecycle(self) -> str:
        """Return the Lifecycle derived from the share of customer and `former_customer_at`."""
        if self.share_of_customer > 0:
            return Lifecycle.CUSTOMER
        if self.former_customer_at is not None:
            return Lifecycle.FORMER_CUSTOMER
        return Lifecycle.PROSPECT

    def topic_list(self) -> list[Topic]:
        """Return the contact's topics in their order: the ones a batch read at once
        (`preferences.selectors.contacts_attach_topics`), else from the database."""
        attached = self.__dict__.get("_attached_topics")
        return list(attached) if attached is not None else list(self.topics.all())

    def is_paused(self, now: datetime | None = None) -> bool:
        return self.paused_until is not None and self.paused_until > (now or timezone.now())

    def may_receive_marketing(self, now: datetime | None = None) -> bool:
        """Return whether consent allows a marketing mail now (checked again at send time): `marketable_q`
        for one loaded contact, tied to it by a property test (tests/preferences/test_marketable_agrees.py)."""
        return self.status == self.Status.CONFIRMED and self.suppressed_at is None and not self.is_paused(now)

    def rotate_token_secret(self) -> None:
        self.token_secret = new_token_secret()
        self.save(update_fields=["token_secret", "updated_at"])

    def revoke_links(self) -> None:
        """Revoke every preference, confirmation and dossier link sent so far (unsubscribe links keep working)."""
        Contact.objects.filter(pk=self.pk).update(
            token_version=models.F("token_version") + 1, updated_at=timezone.now()
        )
        self.refresh_from_db(fields=["token_version", "updated_at"])

    def was_invited(self) -> bool:
        """Return whether the latest request to confirm was an invitation from us, not the person's own signup."""
        kinds = (
            self.consent_events.filter(kind__in=[ConsentEvent.Kind.SIGNUP, ConsentEvent.Kind.INVITED])
            .order_by("occurred_at", "id")
            .values_list("kind", flat=True)
        )
        return invited_last(kinds)

    def choices_snapshot(self, topics: list[str] | None = None) -> dict[str, Any]:
        """Return the person's choices as stored in the consent ledger (`topics`: their slugs, when known)."""
        if topics is None:
            topics = list(self.topics.values_list("slug", flat=True)) if self.pk else []
        return {
            "status": self.status,
            "topics": sorted(topics),
            "general_updates": self.general_updates,
            "frequency": self.frequency,
            "locale": self.locale,
            "paused_until": self.paused_until.isoformat() if self.paused_until else None,
            "service_reminders": self.service_reminders,
        }


def invited_last(kinds: Iterable[str]) -> bool:
    """Return whether, of the ledger kinds in order, the last signup or invitation is an invitation.

    An invited person has not signed up: pages and mails must not say so until it confirms.
    """
    asked = [kind for kind in kinds if kind in (ConsentEvent.Kind.SIGNUP, ConsentEvent.Kind.INVITED)]
    return bool(asked) and asked[-1] == ConsentEvent.Kind.INVITED


def marketable_q(now: datetime, *, via: str = "") -> Q:
    """Return THE rule for "may get a marketing mail now": confirmed, a valid address (not suppressed) and
    not paused at `now`. `via` is the path to the contact ("contact__" from a Schedule).

    Every audience, count and send uses it (`Contact.objects.marketable()`, the silence guard, ops,
    announcements); `Contact.may_receive_marketing` is the same rule for one loaded contact.
    """
    return Q(**{f"{via}status": Contact.Status.CONFIRMED, f"{via}suppressed_at__isnull": True}) & (
        Q(**{f"{via}paused_until__isnull": True}) | Q(**{f"{via}paused_until__lte": now})
    )


class ConsentEvent(models.Model):
    """One entry of the append-only consent ledger."""

    class Kind(models.TextChoices):
        SIGNUP = "signup", _("signed up")
        CONFIRMED = "confirmed", _("confirmed")
        PREFERENCES = "preferences", _("changed preferences")
        PAUSED = "paused", _("paused")
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed")
        RESUBSCRIBED = "resubscribed", _("subscribed again")
        SUPPRESSED = "suppressed", _("suppressed")
        DATA_EXPORTED = "data_exported", _("data exported")
        ERASED = "erased", _("personal data erased")
        SUNSET = "sunset", _("sunset (no engagement)")
        POLICY = "policy", _("cadence policy applied")
        INVITED = "invited", _("invited to subscribe (not consent)")

    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, related_name="consent_events", verbose_name=_("contact")
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("kind"))
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True, verbose_name=_("occurred at"))
    ip_address = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("IP address"))
    user_agent = models.CharField(max_length=500, blank=True, verbose_name=_("browser (user agent)"))
    source = models.CharField(max_length=100, blank=True, verbose_name=_("source"))
    wording_version = models.CharField(max_length=32, blank=True, verbose_name=_("wording version"))
    before = models.JSONField(default=dict, blank=True, verbose_name=_("before"))
    after = models.JSONField(default=dict, blank=True, verbose_name=_("after"))
    evidence = models.JSONField(default=dict, blank=True, verbose_name=_("evidence"))

    class Meta:
        ordering = ["occurred_at", "id"]
        verbose_name = _("consent event")
        verbose_name_plural = _("consent ledger")
        indexes = [models.Index(fields=["contact", "occurred_at"], name="consent_contact_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.occurred_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("The consent ledger is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("The consent ledger is append-only.")


class PendingSignup(models.Model):
    """The choices of a signup for an address we know, waiting for the mailbox to confirm them.

    Anonymous input never rewrites a person: a signup for a pending, unsubscribed or invited contact
    changes nothing until the confirmation link it mailed (which names this row) is used.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("id"))
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="pending_signups", verbose_name=_("contact")
    )
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    locale = models.CharField(_("language"), max_length=2, choices=Locale.choices)
    frequency = models.CharField(_("frequency"), max_length=32)
    topics = models.JSONField(_("topics"), default=list, blank=True)
    source = models.CharField(_("source"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("signup waiting for confirmation")
        verbose_name_plural = _("signups waiting for confirmation")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M}"


class SuppressionEntry(models.Model):
    """An address that must not be mailed again, kept by hash so it outlives the contact.

    An erased contact leaves no address behind, only this hash; a re-import or a new signup of the
    same address is recognised and not mailed.
    """

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", _("hard bounce")
        SOFT_BOUNCES = "soft_bounces", _("repeated soft bounces")
        COMPLAINT = "complaint", _("spam complaint")
        MANUAL = "manual", _("suppressed by hand")
        ERASED = "erased", _("erased on request")

    address_hash = models.CharField(max_length=64, unique=True, verbose_name=_("address hash (HMAC-SHA256)"))
    # Which key made the hash (preferences.addresshash.key_id), or "sha256" for an unkeyed legacy entry.
    hash_key_id = models.CharField(max_length=12, default="", editable=False, verbose_name=_("hash key"))
    reason = models.CharField(max_length=32, choices=Reason.choices, verbose_name=_("reason"))
    created_at = models.DateTimeField(default=timezone.now, editable=False, verbose_name=_("created at"))
    evidence = models.JSONField(default=dict, blank=True, verbose_name=_("evidence"))

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppression list")

    def __str__(self) -> str:
        return f"{self.reason} {self.address_hash[:12]}"


class Product(models.Model):
    """A product a contact holds (from the CRM), with the dates that reminders are about."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="products", verbose_name=_("contact"))
    external_id = models.CharField(_("CRM id"), max_length=100, null=True, blank=True, unique=True)
    name = models.CharField(_("name"), max_length=200)
    product_type = models.SlugField(_("product type"), max_length=50)
    started_on = models.DateField(_("started on"), null=True, blank=True)
    renews_on = models.DateField(_("renews on"), null=True, blank=True)
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        indexes = [
            # The reminder tick reads products of one type and date in keyset (id) order.
            models.Index(fields=["product_type", "renews_on", "id"], name="product_type_renews"),
            models.Index(fields=["product_type", "ends_on", "id"], name="product_type_ends"),
            models.Index(fields=["contact", "ends_on"], name="product_contact_ends"),
        ]

    def __str__(self) -> str:
        return self.name

    def has_ended(self, on: date) -> bool:
        """Return whether the product had ended before `on` (it is still held on its end date)."""
        return self.ends_on is not None and self.ends_on < on


def address_hash(email: str) -> str:
    """Return the keyed hash (HMAC-SHA256) of the normalised address: what outlives an erased contact."""
    return addresshash.keyed_hash(email)


def address_hashes(email: str) -> list[str]:
    """Return every hash the address may be listed under (current key, old keys, legacy SHA-256)."""
    return addresshash.lookup_hashes(email)


class Conversion(models.Model):
    """A prospect became a customer: recorded once per contact, when the share first goes above 0."""

    contact = models.OneToOneField(
        Contact, on_delete=models.CASCADE, related_name="conversion", verbose_name=_("contact")
    )
    converted_at = models.DateTimeField(_("converted at"), default=timezone.now, db_index=True)
    source = models.CharField(_("source of the change"), max_length=100, blank=True)
    contact_source = models.CharField(_("signup source"), max_length=100, blank=True)
    potential = models.CharField(_("potential at conversion"), max_length=8, choices=Contact.Potential.choices)
    signed_up_at = models.DateTimeField(_("signed up at"))
    days_as_prospect = models.PositiveIntegerField(_("days as prospect"))
    mails_before = models.PositiveIntegerField(_("mails received before"), default=0)

    class Meta:
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")

    def __str__(self) -> str:
        return f"{self.contact} {self.converted_at:%Y-%m-%d}"


class CadencePolicy(models.Model):
    """Per potential, the most frequent cadence a contact may get (marketers edit it in the admin)."""

    potential = models.CharField(_("potential"), max_length=8, choices=Contact.Potential.choices, unique=True)
    max_frequency = models.CharField(
        _("most frequent cadence allowed"),
        max_length=32,
        blank=True,
        help_text=_("A configured frequency key, e.g. monthly. Empty: every configured frequency is allowed."),
    )
    welcome_only = models.BooleanField(
        _("welcome series only"),
        default=False,
        help_text=_("After the welcome series only the least frequent cadence, so nobody is left silent."),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("cadence policy")
        verbose_name_plural = _("cadence policies")
        ordering = ["potential"]

    def __str__(self) -> str:
        return str(self.get_potential_display())


class ImportJob(models.Model):
    """A contacts file imported in the background (admin), with its progress and its report."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        VALIDATING = "validating", _("validating")
        APPLYING = "applying", _("applying")
        DONE = "done", _("done")
        REFUSED = "refused", _("refused: bad rows")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("id"))
    file_path = models.CharField(max_length=500, verbose_name=_("stored file"))
    original_name = models.CharField(_("file"), max_length=255)
    skip_bad_rows = models.BooleanField(_("skip bad rows"), default=False)
    invite = models.BooleanField(
        _("invite those without consent"),
        default=False,
        help_text=_("Each new or pending contact of the file gets one invitation to confirm (double opt-in)."),
    )
    invited = models.PositiveIntegerField(_("invited"), default=0)
    requested_by = models.CharField(_("requested by"), max_length=150, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    bytes_total = models.PositiveBigIntegerField(default=0, verbose_name=_("size (bytes)"))
    bytes_done = models.PositiveBigIntegerField(default=0, verbose_name=_("bytes read"))
    rows_seen = models.PositiveIntegerField(_("rows"), default=0)
    counts = models.JSONField(default=dict, blank=True, verbose_name=_("counts"))
    bad_rows = models.JSONField(default=list, blank=True, verbose_name=_("bad rows (details)"))
    bad_count = models.PositiveIntegerField(_("bad rows"), default=0)
    error = models.TextField(blank=True, verbose_name=_("error"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.status})"

    @property
    def percent(self) -> int:
        """Return the progress of the current phase in percent (validation, then applying)."""
        if self.status in (self.Status.DONE, self.Status.REFUSED):
            return 100
        share = self.bytes_done / self.bytes_total if self.bytes_total else 0
        return int(share * 50) + (50 if self.status == self.Status.APPLYING else 0)

    @property
    def is_running(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.VALIDATING, self.Status.APPLYING)


class LeaveFeedback(models.Model):
    """What happened on the way out: the alternative a person chose (or that they left) and why, if they said."""

    class Reason(models.TextChoices):
        TOO_OFTEN = "too_often", _("too often")
        NOT_RELEVANT = "not_relevant", _("not relevant")
        NEVER_SIGNED_UP = "never_signed_up", _("never signed up")
        OTHER = "other", _("other")

    class Outcome(models.TextChoices):
        LESS_OFTEN = "less_often", _("less often")
        PAUSE = "pause", _("pause")
        FEWER_TOPICS = "fewer_topics", _("fewer topics")
        LEFT = "left", _("left")

    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="leave_feedback", verbose_name=_("contact")
    )
    occurred_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    outcome = models.CharField(_("chose"), max_length=16, choices=Outcome.choices)
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices, blank=True)
    # The contact's signup source, copied so the counts per source survive an erasure.
    contact_source = models.CharField(_("signup source"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("leaving feedback")
        verbose_name_plural = _("leaving feedback")
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.outcome} {self.reason or '-'} {self.occurred_at:%Y-%m-%d}"

    @property
    def is_save(self) -> bool:
        """Return whether the person stayed (chose an alternative instead of leaving)."""
        return self.outcome != self.Outcome.LEFT


class AuditEntryQuerySet(models.QuerySet):
    """The audit trail is append-only: rows are added, never changed or removed through the ORM."""

    def update(self, **kwargs: Any) -> int:
        raise TypeError("The audit trail is append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("The audit trail is append-only.")


class AuditEntry(models.Model):
    """One bulk or data-rights operation by a staff user: who, when, what and how many rows.

    Written by preferences.audit.audit_record from the import, export, invite and erase paths; it
    names no contact (an erasure must not leave the person behind here).
    """

    class Action(models.TextChoices):
        IMPORT = "import", _("import")
        EXPORT = "export", _("export")
        INVITE = "invite", _("invite")
        EXPORT_DOSSIER = "export_dossier", _("personal data export")
        ERASE = "erase", _("erasure")

    occurred_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True, editable=False)
    actor = models.CharField(_("who"), max_length=150, editable=False)
    # The user's id at the time; the name stays readable after the account is deleted.
    actor_id = models.IntegerField(_("user id"), null=True, blank=True, editable=False)
    action = models.CharField(_("what"), max_length=16, choices=Action.choices, editable=False)
    rows = models.PositiveIntegerField(_("rows"), editable=False)
    detail = models.JSONField(_("detail"), default=dict, blank=True, editable=False)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.rows}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError("The audit trail is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("The audit trail is append-only.")
