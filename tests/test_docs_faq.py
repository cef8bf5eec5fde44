"""docs/faq.md names only what the code does: every setting it names is a setting, every
node or pod Event reason it names is one scaler sends."""

from __future__ import annotations

import re
from pathlib import Path

from scaler.core.settings import Settings, field_names

ROOT = Path(__file__).resolve().parents[1]
FAQ = (ROOT / "docs" / "faq.md").read_text()


def test_every_setting_the_faq_names_exists():
    named = set(re.findall(r"`([a-z]+(?:_[a-z0-9]+)+)`", FAQ))
    settings = set(field_names(Settings()))
    not_settings = {"no_groups_discovered", "scale_up_failed"}  # log events, checked below
    assert named - not_settings <= settings, named - not_settings - settings
    assert {"idle_timeout_s", "launch_failure_ttl_s", "batch_idle_s"} <= named


def test_every_event_reason_and_log_event_the_faq_names_is_sent_by_the_code():
    sources = "\n".join(p.read_text() for p in (ROOT / "scaler").rglob("*.py"))
    reasons = set(re.findall(r"`([A-Z][a-z]+(?:[A-Z][a-z]+)*)`", FAQ))
    aws_and_kubernetes = {"AccessDenied", "InsufficientInstanceCapacity", "PodScheduled",
                          "Unschedulable"}
    reasons -= aws_and_kubernetes
    assert {"Cordoned", "SpotInterruption", "ScaleDown", "NotTriggerScaleUp"} <= reasons
    for reason in reasons:
        assert f'"{reason}"' in sources, reason
    for event in ("no_groups_discovered", "scale_up_failed", "aws.pool_disabled"):
        assert event in FAQ and f'"{event}"' in sources, event
