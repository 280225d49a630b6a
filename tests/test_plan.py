"""The plan: sizes from token lengths, where the state cache goes given the free sizes, and the probes."""

from __future__ import annotations

import pytest
import torch

import llama
from errors import UserError
from training.devices import FreeSpace, available_ram_bytes, cpu_has_native_bf16, resolve_device
from training.plan import GIB, cache_bytes, forward_flops, matmul_weights, parameter_count, plan_cache

CONFIG = llama.load_config("meta-llama/Llama-3.2-1B")
TRAIN = [175] * 80_000  # with the test part 17.5M tokens: 17.5e6 * 2048 * 2 bytes = 66.8 GiB of bf16 states
TEST = [175] * 20_000
NEED = (80_000 + 20_000) * 175 * 2048 * 2


def free(accelerator: float | None, ram: float, disk: float) -> FreeSpace:
    gb = lambda x: None if x is None else int(x * GIB)  # noqa: E731
    return FreeSpace(accelerator=gb(accelerator), ram=gb(ram), disk=gb(disk), disk_path="/scratch")


def test_sizes_follow_the_documented_formulas():
    assert parameter_count(CONFIG) == 1_235_814_400  # Llama-3.2-1B, as published
    assert matmul_weights(CONFIG) == parameter_count(CONFIG) - 128256 * 2048 - 33 * 2048
    assert forward_flops(CONFIG, [3, 4]) == 2 * matmul_weights(CONFIG) * 7 + 2 * 16 * 2048 * (9 + 16)
    assert cache_bytes(CONFIG, [3, 4], per_token=True) == 7 * 2048 * 2
    assert cache_bytes(CONFIG, [3, 4], per_token=False, cached_layers=3) == 2 * 2048 * 4 * 3


@pytest.mark.parametrize("sizes, place", [
    ((136, 128, 64), "accelerator"),  # 136 - 13.6 margin = 122 GiB usable
    ((70, 128, 64), "ram"),           # 70 - 7 = 63 < 66.8; 0.7 * 128 = 89.6
    ((None, 128, 64), "ram"),         # a CPU run has no accelerator memory
    ((70, 80, 200), "disk"),          # RAM 0.7 * 80 = 56 < 66.8; disk 200 - 10 = 190
    ((70, 80, 64), "stream"),         # disk 64 - 3.2 = 60.8 < 66.8: nowhere holds it
])
def test_auto_takes_the_first_place_that_holds_both_tables(sizes, place):
    plan = plan_cache(TRAIN, TEST, CONFIG, free(*sizes))
    assert plan.cache_bytes == NEED and plan.place == place
    assert plan.tokens == (14_000_000, 3_500_000) and plan.sequences == (80_000, 20_000)


def test_the_margin_decides_at_the_edge():
    assert plan_cache(TRAIN, TEST, CONFIG, free(None, NEED / 0.7 / GIB + 0.01, 0)).place == "ram"
    assert plan_cache(TRAIN, TEST, CONFIG, free(None, NEED / 0.7 / GIB - 0.01, 0)).place == "stream"
    # disk: the margin is max(2 GiB, 5%), counted once for both tables
    assert plan_cache(TRAIN, TEST, CONFIG, free(None, 1, NEED / 0.95 / GIB + 0.01)).place == "disk"
    assert plan_cache(TRAIN, TEST, CONFIG, free(None, 1, NEED / GIB + 1)).place == "stream"


@pytest.mark.parametrize("mode, sizes, place", [
    ("memory", (136, 1, 1), "accelerator"), ("memory", (10, 128, 1), "ram"), ("disk", (136, 128, 200), "disk"),
    ("stream", (136, 128, 200), "stream"),
])
def test_explicit_modes_that_fit_go_where_asked(mode, sizes, place):
    assert plan_cache(TRAIN, TEST, CONFIG, free(*sizes), mode=mode).place == place


@pytest.mark.parametrize("mode, sizes, named", [
    ("memory", (70, 80, 500), "accelerator memory 63.0 GiB, RAM 56.0 GiB"),
    ("memory", (None, 80, 500), "RAM 56.0 GiB"),
    ("disk", (136, 128, 64), "disk 60.8 GiB"),
])
def test_explicit_modes_that_cannot_fit_fail_in_one_line(mode, sizes, named):
    with pytest.raises(UserError) as err:
        plan_cache(TRAIN, TEST, CONFIG, free(*sizes), mode=mode)
    message = str(err.value)
    assert "\n" not in message and f"--cache {mode}" in message and "66.8 GiB" in message and named in message


def test_pooled_states_are_small_enough_for_anywhere():
    plan = plan_cache([20] * 67_349, [25] * 872, CONFIG, free(None, 4, 1), per_token=False)
    assert plan.cache_bytes == (67_349 + 872) * 2048 * 4 and plan.place == "ram"


def test_the_plan_renders_where_the_cache_goes_and_the_free_sizes_seen():
    text = plan_cache(TRAIN, TEST, CONFIG, free(70, 80, 200), examples=(87_599, 10_570)).render()
    lines = text.splitlines()
    assert len(lines) == 5 and all(len(line) < 130 for line in lines)
    assert "87,599 examples -> 80,000 sequences" in lines[0]
    assert "66.8 GiB" in lines[2] and "RAM 56.0 GiB (80.0 GiB)" in lines[3]
    assert lines[4].startswith("plan: --cache auto -> disk") and "/scratch" in lines[4]
    assert "fits nowhere" in plan_cache(TRAIN, TEST, CONFIG, free(None, 1, 1)).render()


def test_an_unknown_mode_is_one_line():
    with pytest.raises(UserError, match="--cache must be one of auto, memory, disk, stream"):
        plan_cache(TRAIN, TEST, CONFIG, free(None, 1, 1), mode="gpu")


def test_auto_dtype_on_cpu_is_bf16_only_with_native_bf16_matmuls():
    assert resolve_device("cpu", "auto", cpu_bf16=lambda: True) == (torch.device("cpu"), torch.bfloat16)
    assert resolve_device("cpu", "auto", cpu_bf16=lambda: False) == (torch.device("cpu"), torch.float32)
    assert resolve_device("cpu", "float32", cpu_bf16=lambda: True) == (torch.device("cpu"), torch.float32)


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    (tmp_path / "amx").write_text("flags\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\n")
    (tmp_path / "avx2").write_text("flags\t: fpu sse avx2 fma\n")
    assert cpu_has_native_bf16(tmp_path / "amx") and not cpu_has_native_bf16(tmp_path / "avx2")


def test_available_ram_is_memavailable(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal:  131072000 kB\nMemFree:  1000 kB\nMemAvailable:  120000000 kB\n")
    assert available_ram_bytes(tmp_path / "meminfo") == 120_000_000 * 1024
    assert available_ram_bytes(tmp_path / "missing") > 0  # falls back to the free physical pages


def test_a_pass_that_stops_at_an_earlier_block_costs_that_share_of_the_flops():
    config = llama.load_config("meta-llama/Llama-3.2-1B")
    lengths = [100, 37, 250]
    assert forward_flops(config, lengths, depth=8) * 2 == forward_flops(config, lengths)
    assert forward_flops(config, lengths, depth=16) == forward_flops(config, lengths)
