"""A push can only fail while the playground is offline: starting one again is refused up front (issue 14,
item 13). The unit tests run offline (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import pytest

from services.hub.push import PushError

ALICE = "anon:alice"


def test_a_failed_push_is_not_started_again_while_offline(manager):
    from tabs.jobs import start_again

    job_id = manager.submit_command("push", ALICE, ["info"], title="Push to me/x")
    record = manager.wait(job_id, timeout=60)
    manager.store.update(job_id, status="failed", error="The Hub was not reachable.")
    with pytest.raises(PushError, match="Pushing is off: the playground is offline"):
        start_again(manager, record.id, ALICE, None)
    assert [r.id for r in manager.list(ALICE)] == [job_id], "no new job was started"


def test_the_offline_sentence_is_given_only_when_offline(settings, monkeypatch):
    from services.hub import check as push_check

    assert push_check.offline_reason() == push_check.OFFLINE
    monkeypatch.setattr(type(settings), "offline", property(lambda self: False))
    assert push_check.offline_reason() is None
    push_check.check_online()
