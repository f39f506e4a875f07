"""The call pipeline against the simulator over real HTTP: claiming, budget, and every outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from fleet.models import ApiCall, CallAttempt, CallState, Priority, SolaxAccount
from fleet.pipeline import dispatch, handlers, ledger, queue
from tests.conftest import TOKEN

pytestmark = pytest.mark.django_db

SEEN: list[tuple[str, str]] = []


@handlers.register("test.record")
def _record(call, outcome):  # type: ignore[no-untyped-def]
    SEEN.append((str(call.code), outcome.state))


@pytest.fixture(autouse=True)
def _clear_seen():
    SEEN.clear()


def _group_add(account, name="Pipeline", **kwargs):  # type: ignore[no-untyped-def]
    return queue.enqueue(account, "group_add", {"name": name}, purpose="test", handler="test.record", **kwargs)


def _read(account, **kwargs):  # type: ignore[no-untyped-def]
    return queue.enqueue(account, "group_query", {"current": 1, "size": 10}, handler="test.record", **kwargs)


def _fill_minute(account, n):  # type: ignore[no-untyped-def]
    filler = ApiCall.objects.create(account=account, endpoint="group_query", priority=Priority.READ,
                                    state=CallState.SUCCEEDED)
    ledger.record_past_attempts(account, filler, [timezone.now()] * n)


def test_enqueue_refuses_the_token_and_unknown_handlers(sim_account):
    with pytest.raises(ValueError, match="token"):
        queue.enqueue(sim_account, "group_add", {"name": "x", "tokenId": TOKEN})
    with pytest.raises(ValueError, match="no handler"):
        queue.enqueue(sim_account, "group_add", {"name": "x"}, handler="nope")
    assert not ApiCall.objects.exists()


def test_enqueue_starts_a_pump_after_commit(sim_account, django_capture_on_commit_callbacks, monkeypatch):
    kicked = []
    monkeypatch.setattr(queue, "kick", kicked.append)
    with django_capture_on_commit_callbacks(execute=True):
        _group_add(sim_account)
    assert kicked == [sim_account.pk]


def test_it_claims_in_priority_order(sim_account):
    read = _read(sim_account)
    poll = queue.enqueue(sim_account, "query_command", {"commandId": "1"})
    write = _group_add(sim_account)
    control = queue.enqueue(sim_account, "group_control", {"groupId": "1", "superType": 1, "systemSwitch": 1})
    order = [ledger.claim_next(sim_account.pk).pk for _ in range(4)]
    assert order == [control.pk, write.pk, poll.pk, read.pk]
    assert ledger.claim_next(sim_account.pk) is None


def test_a_result_poll_due_for_long_goes_before_queued_control_sends(sim_account, settings):
    """While a fleet is sent batch after batch, the results of the batches already sent come in."""
    from datetime import timedelta

    from django.utils import timezone

    settings.COMMAND_POLL_AGING_SECONDS = 20
    now = timezone.now()
    sends = [queue.enqueue(sim_account, "group_control", {"groupId": str(i), "superType": 1, "systemSwitch": 1},
                           not_before=now - timedelta(seconds=60)) for i in range(3)]
    fresh = queue.enqueue(sim_account, "query_result", {"taskId": "fresh"}, not_before=now - timedelta(seconds=5))
    aged = queue.enqueue(sim_account, "query_result", {"taskId": "aged"}, not_before=now - timedelta(seconds=30))
    order = [ledger.claim_next(sim_account.pk, now).pk for _ in range(5)]
    assert order == [aged.pk, *(c.pk for c in sends), fresh.pk]


def test_a_claim_is_a_sending_row_with_its_attempt(sim_account):
    call = _group_add(sim_account)
    claimed = ledger.claim_next(sim_account.pk)
    call.refresh_from_db()
    assert (claimed.pk, call.state, call.attempts) == (call.pk, CallState.SENDING, 1)
    assert CallAttempt.objects.filter(call=call).count() == 1


def test_it_waits_for_not_before(sim_account):
    _group_add(sim_account, not_before=timezone.now() + timedelta(minutes=5))
    assert ledger.claim_next(sim_account.pk) is None


def test_the_minute_budget_holds_calls_back(sim_account):
    _fill_minute(sim_account, sim_account.calls_per_minute - sim_account.safety_margin_per_minute)
    _group_add(sim_account)
    assert ledger.claim_next(sim_account.pk) is None
    later = timezone.now() + ledger.minute_window() + timedelta(seconds=1)
    assert ledger.claim_next(sim_account.pk, now=later) is not None


def test_the_end_of_the_day_is_kept_for_control(sim_account, settings):
    settings.SOLAX_MAX_CALLS_PER_MINUTE = 100_000
    sim_account.calls_per_minute = 100_000
    sim_account.calls_per_day = 1000
    sim_account.safety_margin_per_day = 0
    sim_account.control_share_percent = 10
    sim_account.save()
    _fill_minute(sim_account, 905)  # 95 left of the day, 100 reserved for control
    read = _read(sim_account)
    assert ledger.claim_next(sim_account.pk) is None
    control = queue.enqueue(sim_account, "group_control", {"groupId": "1", "superType": 1, "systemSwitch": 1})
    assert ledger.claim_next(sim_account.pk).pk == control.pk
    read.refresh_from_db()
    assert read.state == CallState.QUEUED


def test_a_paused_account_sends_nothing(sim_account):
    sim_account.paused_until = timezone.now() + timedelta(minutes=1)
    sim_account.save()
    _group_add(sim_account)
    assert ledger.claim_next(sim_account.pk) is None


def test_success_runs_the_handler_and_keeps_the_response_without_the_token(sim_account, simulator):
    call = _group_add(sim_account, name="Created")
    assert dispatch.pump(sim_account.pk, wait=False) == 1
    call.refresh_from_db()
    assert call.state == CallState.SUCCEEDED
    assert call.http_status == 200 and call.duration_ms is not None
    assert '"success":true' in call.response.replace(" ", "")
    assert SEEN == [(str(call.code), "succeeded")]
    assert TOKEN not in call.response and TOKEN not in str(call.params)
    assert [g.name for g in simulator.sim.tenant().groups.values()].count("Created") == 1


def test_a_vendor_error_fails_with_the_vendors_text(sim_account):
    call = queue.enqueue(sim_account, "group_update", {"id": "999", "name": "x"}, handler="test.record")
    dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db()
    assert call.state == CallState.FAILED
    assert call.error and "ApiError" in call.error
    assert SEEN == [(str(call.code), "failed")]


def test_a_rate_limit_answer_pauses_the_account_and_requeues(sim_account, simulator):
    simulator.configure(per_minute=1)
    first, second = _read(sim_account), _read(sim_account)
    dispatch.pump(sim_account.pk, wait=False)
    first.refresh_from_db(), second.refresh_from_db(), sim_account.refresh_from_db()
    assert first.state == CallState.SUCCEEDED
    assert second.state == CallState.QUEUED
    assert second.vendor_code == "3"
    assert sim_account.is_paused()
    assert 55 <= (sim_account.paused_until - timezone.now()).total_seconds() <= 61
    assert "per-minute limit" in sim_account.pause_reason
    assert second.not_before >= sim_account.paused_until - timedelta(seconds=1)


def test_the_lockout_answer_pauses_for_an_hour(sim_account, simulator):
    simulator.configure(per_minute=1, lockout_after=1)
    _read(sim_account), _read(sim_account)
    dispatch.pump(sim_account.pk, wait=False)
    sim_account.refresh_from_db()
    assert (sim_account.paused_until - timezone.now()).total_seconds() > 3500
    assert "locked the account out" in sim_account.pause_reason


def test_an_invalid_token_pauses_the_account_and_requeues(sim_account, simulator):
    simulator.configure(faults=[{"kind": "token_invalid"}])
    call = _group_add(sim_account)
    dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db(), sim_account.refresh_from_db()
    assert call.state == CallState.QUEUED
    assert "rejected the token" in sim_account.pause_reason
    assert SEEN == []


@pytest.mark.parametrize("fault", ["timeout", "http_503", "malformed_json", "connection_reset"])
def test_a_write_that_may_have_arrived_becomes_unknown_and_is_never_resent(sim_account, simulator, settings, fault):
    settings.SOLAX_READ_TIMEOUT = 1
    simulator.configure(faults=[{"kind": fault, "seconds": 2, "count": 1}])
    call = _group_add(sim_account)
    dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db()
    assert call.state == CallState.UNKNOWN, call.error
    assert SEEN == [(str(call.code), "unknown")]
    dispatch.pump(sim_account.pk, wait=False)  # nothing is resent
    assert simulator.counters()["tokens"][TOKEN]["calls"].get("group_add", 0) == 1


@pytest.mark.parametrize("fault", ["timeout", "http_503", "html_200", "malformed_json"])
def test_a_read_that_failed_retries_with_backoff(sim_account, simulator, settings, fault):
    settings.SOLAX_READ_TIMEOUT = 1
    simulator.configure(faults=[{"kind": fault, "seconds": 2, "count": 1}])
    call = _read(sim_account)
    dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db()
    assert call.state == CallState.QUEUED and call.attempts == 1
    assert call.not_before > timezone.now()
    call.not_before = timezone.now()
    call.save()
    dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db()
    assert call.state == CallState.SUCCEEDED and call.attempts == 2
    assert CallAttempt.objects.filter(call=call).count() == 2


def test_a_read_gives_up_after_its_attempts(sim_account, simulator):
    simulator.configure(faults=[{"kind": "http_503"}])
    call = _read(sim_account)
    for _ in range(dispatch.MAX_READ_ATTEMPTS):
        ApiCall.objects.filter(pk=call.pk).update(not_before=timezone.now())
        dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db()
    assert call.state == CallState.FAILED
    assert "503" in (call.error + str(call.http_status))


def test_a_refused_connection_requeues_even_a_write(sim_account):
    sim_account.vpp_base_url = "http://127.0.0.1:9/proxy"  # discard port: nothing listens
    sim_account.save()
    call = _group_add(sim_account)
    dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db()
    assert call.state == CallState.QUEUED
    assert "NotSentError" in call.error


def test_the_sweeper_settles_calls_left_sending(sim_account):
    write, read = _group_add(sim_account), _read(sim_account)
    ledger.claim_next(sim_account.pk), ledger.claim_next(sim_account.pk)
    assert dispatch.recover_stale() == 0  # not stale yet
    later = timezone.now() + dispatch.stale_after() + timedelta(seconds=1)
    assert dispatch.recover_stale(now=later) == 2
    write.refresh_from_db(), read.refresh_from_db()
    assert write.state == CallState.UNKNOWN
    assert read.state == CallState.QUEUED
    assert SEEN == [(str(write.code), "unknown")]


def test_cancel_only_touches_queued_calls(sim_account):
    queued, sending = _group_add(sim_account), _group_add(sim_account, name="Other")
    ApiCall.objects.filter(pk=sending.pk).update(state=CallState.SENDING)
    sending.refresh_from_db()
    assert queue.cancel(queued) is True
    assert queue.cancel(sending) is False
    queued.refresh_from_db()
    assert queued.state == CallState.CANCELLED


def test_a_handler_error_does_not_lose_the_outcome(sim_account, caplog):
    @handlers.register("test.broken")
    def _broken(call, outcome):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    call = queue.enqueue(sim_account, "group_add", {"name": "x"}, handler="test.broken")
    dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db()
    assert call.state == CallState.SUCCEEDED
    assert "handler failed" in call.error


def test_the_token_never_reaches_the_log(sim_account, simulator, caplog, settings):
    settings.SOLAX_READ_TIMEOUT = 1
    simulator.configure(faults=[{"kind": "timeout", "seconds": 2, "count": 1}])
    caplog.set_level("DEBUG")
    _group_add(sim_account), _read(sim_account)
    dispatch.pump(sim_account.pk, wait=False)
    assert caplog.records
    assert TOKEN not in caplog.text
    for call in ApiCall.objects.all():
        assert TOKEN not in call.error + call.response + str(call.params)


def test_old_budget_rows_are_pruned_and_the_sequence_goes_on(sim_account):
    call = _read(sim_account)
    now = timezone.now()
    ledger.record_past_attempts(sim_account, call, [now - timedelta(days=3), now - timedelta(hours=1)])
    assert ledger.prune_attempts(now) == 1
    assert list(CallAttempt.objects.values_list("seq", flat=True)) == [2]
    assert ledger.claim_next(sim_account.pk) is not None
    assert sorted(CallAttempt.objects.values_list("seq", flat=True)) == [2, 3]


def test_the_sweep_and_pump_tasks_call_the_services(sim_account):
    from fleet.pipeline import tasks

    _read(sim_account)
    assert tasks.pump(sim_account.pk) == 1
    _read(sim_account)
    assert tasks.sweep_calls() == 1
    assert tasks.prune_attempts() == 0


def test_sent_at_never_goes_backwards_along_the_sequence(sim_account):
    """A worker whose clock is behind still records its attempt after the last one."""
    call = _read(sim_account)
    ahead = timezone.now() + timedelta(seconds=5)
    ledger.record_past_attempts(sim_account, call, [ahead])
    _read(sim_account)
    ApiCall.objects.filter(state=CallState.QUEUED).update(not_before=timezone.now() - timedelta(minutes=1))
    assert ledger.claim_next(sim_account.pk) is not None
    latest = CallAttempt.objects.order_by("-seq").first()
    assert latest.seq == 2 and latest.sent_at >= ahead


# A token that cannot be decrypted (issue 11, item 6) --------------------------------------------

@pytest.fixture
def wrong_keys(settings):  # type: ignore[no-untyped-def]
    """TOKEN_ENCRYPTION_KEYS without the key the tokens were stored under; returns the right ones."""
    right = list(settings.TOKEN_ENCRYPTION_KEYS)
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    return right


def test_a_token_that_cannot_be_decrypted_is_never_sent_nor_counted(sim_account, simulator, wrong_keys):
    write = queue.enqueue(sim_account, "group_control", {"groupId": "1", "superType": 1, "systemSwitch": 1})
    assert ledger.claim_next(sim_account.pk) is None
    assert dispatch.pump(sim_account.pk, wait=False) == 0
    write.refresh_from_db()
    sim_account.refresh_from_db()
    assert (write.state, write.attempts, write.sent_at) == (CallState.QUEUED, 0, None)
    assert not CallAttempt.objects.filter(account=sim_account).exists()
    assert sim_account.is_paused()
    assert sim_account.pause_reason == "token cannot be decrypted: check TOKEN_ENCRYPTION_KEYS"
    assert simulator.counters()["tokens"][simulator.token]["total"] == 0
    assert ledger.budget_of(sim_account).minute_used == 0


def test_the_check_repeats_after_the_pause_while_the_keys_stay_wrong(sim_account, wrong_keys):
    _group_add(sim_account)
    assert ledger.claim_next(sim_account.pk) is None
    later = timezone.now() + timedelta(minutes=2)
    assert ledger.claim_next(sim_account.pk, now=later) is None
    sim_account.refresh_from_db()
    assert sim_account.paused_until > later
    assert not CallAttempt.objects.exists()


def test_the_sweep_resumes_the_account_once_the_keys_open_the_token(sim_account, simulator, settings, wrong_keys):
    write = _group_add(sim_account)
    dispatch.sweep()
    sim_account.refresh_from_db()
    assert sim_account.is_paused()
    settings.TOKEN_ENCRYPTION_KEYS = wrong_keys  # the keys are fixed (the workers restarted with them)
    dispatch.sweep()
    sim_account.refresh_from_db()
    write.refresh_from_db()
    assert (sim_account.paused_until, sim_account.pause_reason) == (None, "")
    assert write.state == CallState.SUCCEEDED
    assert SEEN == [(str(write.code), CallState.SUCCEEDED)]


def test_the_sweep_leaves_other_pauses_alone(sim_account):
    until = timezone.now() + timedelta(minutes=5)
    sim_account.paused_until, sim_account.pause_reason = until, "SolaX answered that the per-minute limit was exceeded"
    sim_account.save()
    assert ledger.resume_readable_tokens() == 0
    sim_account.refresh_from_db()
    assert sim_account.paused_until == until


# The account's budget is held to SOLAX_MAX_CALLS_PER_* (issue 11, item 3) ---------------------

def test_a_budget_edited_above_the_bound_is_held_to_it(sim_account, settings):
    SolaxAccount.objects.filter(pk=sim_account.pk).update(calls_per_minute=500, calls_per_day=50_000,
                                                          safety_margin_per_minute=1)
    budget = ledger.budget_of(sim_account)
    assert (budget.minute_limit, budget.day_limit) == (10, 10_000)
    for _ in range(12):
        _read(sim_account)
    claimed = 0
    while ledger.claim_next(sim_account.pk) is not None:
        claimed += 1
    assert claimed == 9  # 10 a minute less the margin of 1, whatever the row says
    settings.SOLAX_MAX_CALLS_PER_MINUTE = 600  # a contract that allows more raises the bound
    assert ledger.claim_next(sim_account.pk) is not None


def test_the_sweep_lists_only_accounts_that_can_send(sim_account, other_account, django_assert_num_queries):
    _fill_minute(sim_account, sim_account.calls_per_minute - sim_account.safety_margin_per_minute)
    _group_add(sim_account)
    _group_add(other_account, not_before=timezone.now() + timedelta(minutes=5))
    assert dispatch.accounts_with_due_calls() == [sim_account.pk]
    assert ledger.claim_next(sim_account.pk) is None  # the minute is spent: held until its oldest leaves
    sim_account.refresh_from_db()
    free = ledger.next_free_slot(sim_account, timezone.now())
    assert abs((sim_account.send_not_before - free).total_seconds()) < 1
    with django_assert_num_queries(1):  # one query, however many accounts are held
        assert dispatch.accounts_with_due_calls() == []
    assert dispatch.accounts_with_due_calls(sendable_only=False) == [sim_account.pk]
    later = free + timedelta(seconds=1)
    assert dispatch.accounts_with_due_calls(later) == [sim_account.pk]
    assert ledger.claim_next(sim_account.pk, now=later) is not None


def test_a_paused_account_is_not_listed_by_the_sweep(sim_account):
    _group_add(sim_account)
    SolaxAccount.objects.filter(pk=sim_account.pk).update(paused_until=timezone.now() + timedelta(minutes=1))
    assert dispatch.accounts_with_due_calls() == []
    SolaxAccount.objects.filter(pk=sim_account.pk).update(paused_until=None)
    assert dispatch.accounts_with_due_calls() == [sim_account.pk]
