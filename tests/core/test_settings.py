"""--set name=value: one set of rules for scaler's settings and the simulator's."""

from __future__ import annotations

import pytest

from scaler.core.settings import Settings, preset
from simulations.config import SimConfig


def test_numbers_booleans_optionals_and_lists_are_read_by_the_fields_type():
    s = Settings().with_overrides({
        "idle_timeout_s": "60",
        "enabled": "off",
        "spot_interruptions_per_month_by_bucket": "0.01, 0.02,0.03,0.04,0.05",
    })
    assert s.scale_down.idle_timeout_s == 60.0
    assert s.pinning.enabled is False
    assert s.placement.spot_interruptions_per_month_by_bucket == (0.01, 0.02, 0.03, 0.04, 0.05)
    assert preset("scaler").with_overrides({}) == preset("scaler")
    assert Settings().with_overrides({"scale_down.idle_timeout_s": "30"}).scale_down.idle_timeout_s == 30


@pytest.mark.parametrize(
    ("tree", "name", "raw", "message"),
    [
        (Settings(), "expander", "cheapest", "expected one of cost, least-waste"),
        (Settings(), "rebalance_action", "evict", "expected one of cordon, drain, none"),
        (Settings(), "idle_timeout_s", "2 minutes", "expected float"),
        (Settings(), "enabled", "maybe", "expected bool"),
        (Settings(), "nope", "1", "is not a setting; known:"),
        (SimConfig(), "notice_handler", "karpenter", "expected one of reconciler, nth, none"),
        (SimConfig(), "launch_failure_rate_by_pool", "m5.large", "expected key:value"),
        (SimConfig(), "nope", "1", "is not a simulator setting"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting_and_what_it_takes(tree, name, raw, message):
    with pytest.raises(ValueError) as e:
        tree.with_overrides({name: raw})
    assert str(e.value).startswith(f"--set {name}") and message in str(e.value)


def test_the_simulator_reads_key_value_pairs_and_choices_by_the_same_rules():
    c = SimConfig().with_overrides({
        "launch_failure_rate_by_pool": "m5.large-spot:1, g5.xlarge-on-demand:0.5",
        "notice_handler": "nth",
        "boot_s_cpu": "120",
    })
    assert c.cloud.launch_failure_rate_by_pool == (("m5.large-spot", 1.0), ("g5.xlarge-on-demand", 0.5))
    assert c.spot.notice_handler == "nth"
    assert c.boot.boot_s_cpu == 120.0
