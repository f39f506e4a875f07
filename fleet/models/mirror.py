"""The local mirror of the cloud: groups, their members (the API's "inverters"), EV chargers,
device binding and sync runs. Remote ids and SNs are strings, always."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from fleet.models.accounts import SolaxAccount


class Group(models.Model):
    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="groups", db_index=False)
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    remote_id = models.CharField(max_length=40)
    name = models.CharField(max_length=100)
    device_count = models.PositiveIntegerField(default=0)
    remote_created = models.DateTimeField(null=True, blank=True)
    remote_updated = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    removed = models.BooleanField(default=False)  # left the cloud; kept for history
    # When every member page of this group was last read: a sync may skip an unchanged group only
    # when its members were read before (and not too long ago).
    members_synced_at = models.DateTimeField(null=True, blank=True)
    # When a confirmed local write (rename, member add/replace/remove) last changed this group: a sync
    # page requested before then does not overwrite it, and its members are re-read (never skipped).
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "remote_id"], name="group_remote_id")]
        indexes = [models.Index(fields=["account", "removed", "name"], name="group_list")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Inverter(models.Model):
    """A member row of one group: the API's "inverter id" is this row's remote id."""

    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="inverters", db_index=False)
    group = models.ForeignKey(Group, models.CASCADE, related_name="members")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    remote_id = models.CharField(max_length=40)
    inverter_sn = models.CharField(max_length=40)
    dongle_sn = models.CharField(max_length=40, blank=True)  # wifiSn: the registration number
    rated_power = models.FloatField(null=True, blank=True)  # kW as the cloud reports it
    in_group = models.BooleanField(default=True)  # groupStatus
    remote_created = models.DateTimeField(null=True, blank=True)
    remote_updated = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    removed = models.BooleanField(default=False)
    # When a confirmed local write (add, replace, remove) last changed this row: a sync page requested
    # before then neither overwrites it nor marks it removed.
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "remote_id"], name="member_remote_id")]
        indexes = [
            models.Index(fields=["account", "inverter_sn"], name="member_sn"),
            models.Index(fields=["account", "dongle_sn"], name="member_dongle"),
            models.Index(fields=["group", "removed", "inverter_sn"], name="member_list"),
            # the members that left a group, for the ungrouped page (a small part of a fleet)
            models.Index(fields=["account", "inverter_sn"], condition=models.Q(removed=True), name="member_left"),
        ]
        ordering = ["inverter_sn"]

    def __str__(self) -> str:
        return self.inverter_sn


class Charger(models.Model):
    """An EV charger: the API has no list endpoint, so chargers are added by SN."""

    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="chargers", db_index=False)
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sn = models.CharField(max_length=40)
    label = models.CharField(max_length=100, blank=True)
    status = models.IntegerField(null=True, blank=True)  # chargerStatus (NOTES.md lists the codes)
    mode = models.IntegerField(null=True, blank=True)  # chargingMode: 0 STOP 1 FAST 2 ECO 3 GREEN
    power = models.FloatField(null=True, blank=True)
    energy = models.FloatField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=dj_timezone.now)
    # Why SolaX refuses this charger (it does not know the SN or does not authorise this account), in
    # plain words: a refused charger is not read in the background until an operator checks it again.
    refused = models.CharField(max_length=300, blank=True)
    # When a command's callback from the charger confirmed ``mode`` (newer than the last status read).
    mode_confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "sn"], name="charger_sn")]
        indexes = [models.Index(fields=["account", "read_at"], name="charger_oldest_read")]
        ordering = ["sn"]

    def __str__(self) -> str:
        return self.label or self.sn


class BindingRequest(models.Model):
    """One regsn call: at most 100 registration numbers and what became of each."""

    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="binding_requests")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True)
    created = models.DateTimeField(default=dj_timezone.now)
    sns = models.JSONField(default=list)
    state = models.CharField(max_length=10, default="queued")  # queued, done, failed, unknown
    bound = models.JSONField(default=list)
    failed = models.JSONField(default=list)
    already_bound = models.JSONField(default=list)
    unknown = models.JSONField(default=list)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"binding of {len(self.sns)} SN(s)"


class UngroupedDevice(models.Model):
    """A device of the account the mirror learned of outside a group listing: a dongle bound here
    (``source`` "bound", known by its dongle SN) or a device the cloud's fuzzy member query reported in no
    group (``source`` "cloud", groupStatus 0). Members that left a group are read from their removed
    Inverter rows instead; the ungrouped page joins both in SQL (fleet.mirror.ungrouped)."""

    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="ungrouped", db_index=False)
    dongle_sn = models.CharField(max_length=40, blank=True)
    inverter_sn = models.CharField(max_length=40, blank=True)
    source = models.CharField(max_length=10)  # bound, cloud
    seen = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "dongle_sn", "inverter_sn"],
                                               name="ungrouped_device")]
        indexes = [models.Index(fields=["account", "seen"], name="ungrouped_seen")]
        ordering = ["-seen"]

    def __str__(self) -> str:
        return self.dongle_sn or self.inverter_sn


class SyncRun(models.Model):
    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="sync_runs")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    started = models.DateTimeField(default=dj_timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, default="running")  # running, done, incomplete, failed
    pages_done = models.PositiveIntegerField(default=0)
    pages_total = models.PositiveIntegerField(default=0)
    calls_used = models.PositiveIntegerField(default=0)
    groups_seen = models.PositiveIntegerField(default=0)
    members_seen = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # Why the cloud's answers did not add up (a count that moved, a duplicate, a page short of the count):
    # the run kept what it read and removed nothing that depends on the contradicted list.
    incomplete = models.TextField(blank=True)

    class Meta:
        ordering = ["-started"]

    def __str__(self) -> str:
        return f"sync {self.started:%Y-%m-%d %H:%M} ({self.state})"


class SavedSelection(models.Model):
    """A named, reusable list of an account's inverter SNs: a command or schedule target."""

    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="selections", db_index=False)
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    sns = models.JSONField(default=list)
    created = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    updated = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="selection_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
