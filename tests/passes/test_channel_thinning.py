"""The format-neutral planner of thin_channels and prune_channels (no runtime needed)."""
from __future__ import annotations

import numpy as np

from graphtool.passes.helpers.channel_thinning import ChannelGraph, concat_offsets, take

NAN = np.nan


def test_a_constant_channel_goes_with_the_channels_it_is_linked_to():
    channels = ChannelGraph()
    channels.add("conv", [0.0, NAN, 0.5])
    channels.add("relu", [0.0, NAN, 0.5])
    channels.link_all("conv", "relu")
    plan = channels.solve()
    np.testing.assert_array_equal(plan.removed["conv"], [True, False, True])
    np.testing.assert_array_equal(plan.removed["relu"], [True, False, True])
    assert sorted(sorted(group) for group in plan.groups) == [[("conv", 0), ("relu", 0)], [("conv", 2), ("relu", 2)]]


def test_a_residual_add_needs_the_channel_constant_on_every_branch():
    channels = ChannelGraph()
    channels.add("a", [0.0, 0.0])
    channels.add("b", [0.0, NAN])
    channels.add("sum", [0.0, NAN])
    channels.link_all("a", "sum")
    channels.link_all("b", "sum")
    plan = channels.solve()
    assert {key: mask.tolist() for key, mask in plan.removed.items()} == {
        "a": [True, False], "b": [True, False], "sum": [True, False]}
    assert plan.kept == {"varies_on_another_path": 1}


def test_a_blocked_channel_stays_with_its_group_and_says_why():
    channels = ChannelGraph()
    channels.add("conv", [0.0, 0.0, NAN])
    channels.add("out", [0.0, 0.0, NAN])
    channels.link_all("conv", "out")
    channels.block("out", "model_output", [1])
    plan = channels.solve()
    assert plan.removed["conv"].tolist() == [True, False, False]
    assert plan.kept == {"model_output": 1}


def test_a_tensor_keeps_its_last_channel():
    channels = ChannelGraph()
    channels.add("conv", [0.0, 1.0])
    plan = channels.solve()
    assert plan.removed["conv"].tolist() == [False, True] and plan.kept == {"last_channel": 1}


def test_a_concatenation_remaps_indices():
    channels = ChannelGraph()
    channels.add("a", [0.0, NAN])
    channels.add("b", [NAN, 0.0, 0.0])
    channels.add("cat", [0.0, NAN, NAN, 0.0, 0.0])
    for key, offset in zip("ab", concat_offsets([2, 3])):
        channels.link_all(key, "cat", offset)
    channels.block("b", "read_by_SOFTMAX", [2])
    plan = channels.solve()
    assert plan.removed["cat"].tolist() == [True, False, False, True, False]
    assert plan.removed["b"].tolist() == [False, True, False]


def test_take_drops_the_removed_channels_along_an_axis():
    array = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(take(array, np.array([False, True, False, True]), 1), array[:, [0, 2]])
    assert take(array, None, 0) is array
