"""Settings read from the environment: the viewability windows and their check."""

from __future__ import annotations

import pytest

from adtrack.config import Settings, SettingsError


def test_viewability_windows_default_and_read_from_the_environment() -> None:
    default = Settings.from_env({"ADTRACK_DATA_DIR": "/tmp/adtrack-test"})
    assert (default.view_beacon_days, default.view_dedup_days) == (1, 8)
    given = Settings.from_env({"ADTRACK_VIEW_BEACON_DAYS": "2", "ADTRACK_VIEW_DEDUP_DAYS": "30"})
    assert (given.view_beacon_days, given.view_dedup_days) == (2, 30)


@pytest.mark.parametrize(
    ("beacon_days", "dedup_days", "named"),
    [("3", "3", "ADTRACK_VIEW_DEDUP_DAYS"), ("-1", "8", "ADTRACK_VIEW_BEACON_DAYS")],
)
def test_a_beacon_window_the_dedup_would_not_cover_is_refused(
    beacon_days: str, dedup_days: str, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        Settings.from_env(
            {"ADTRACK_VIEW_BEACON_DAYS": beacon_days, "ADTRACK_VIEW_DEDUP_DAYS": dedup_days}
        )


def test_the_jetstream_ack_timeout_is_read_checked_and_given_to_the_writer() -> None:
    from adtrack.adapters.eventlog.nats_writer import open_nats_writer

    base = {"ADTRACK_DATA_DIR": "/tmp/adtrack-test", "ADTRACK_EVENT_LOG": "nats://127.0.0.1:4222"}
    assert Settings.from_env(base).nats_ack_timeout_seconds == 3.0
    given = Settings.from_env({**base, "ADTRACK_NATS_ACK_TIMEOUT_SECONDS": "0.75"})
    assert open_nats_writer(given).ack_timeout == 0.75
    with pytest.raises(ValueError, match="ADTRACK_NATS_ACK_TIMEOUT_SECONDS"):
        Settings.from_env({**base, "ADTRACK_NATS_ACK_TIMEOUT_SECONDS": "0"})


@pytest.mark.parametrize(
    ("name", "value", "takes"),
    [
        ("ADTRACK_FSYNC_INTERVAL_MS", "abc", "a whole number"),
        ("ADTRACK_MAX_CONNECTIONS", "1.5", "a whole number"),
        ("ADTRACK_SEND_TIMEOUT_SECONDS", "soon", "a number"),
        ("ADTRACK_HEADER_TIMEOUT_SECONDS", "inf", "a number"),
        ("ADTRACK_LOGIN_WINDOW_SECONDS", "nan", "a number"),
        ("ADTRACK_AGGREGATOR_HEARTBEAT_SECONDS", "", "a number"),
    ],
)
def test_a_setting_that_is_not_a_number_is_refused_by_its_name(
    name: str, value: str, takes: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"ADTRACK_DATA_DIR": "/tmp/adtrack-test", name: value})
    assert str(refused.value) == f"{name} must be {takes}, not {value!r}"
