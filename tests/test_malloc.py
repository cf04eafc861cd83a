"""intsim.kernels.malloc: Dask's small trim threshold is undone, nothing else is touched."""
import sys

import pytest

from intsim.kernels.malloc import restore_heap_reuse


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_restores_only_when_dask_set_a_small_trim_threshold():
    assert restore_heap_reuse({"MALLOC_TRIM_THRESHOLD_": "65536"}) is True
    assert restore_heap_reuse({}) is False
    assert restore_heap_reuse({"MALLOC_TRIM_THRESHOLD_": str(1 << 30)}) is False
    assert restore_heap_reuse({"MALLOC_TRIM_THRESHOLD_": "many"}) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_fixed_thresholds_only_without_the_users_own():
    from intsim.kernels.malloc import fix_heap_thresholds
    assert fix_heap_thresholds({}) is True
    assert fix_heap_thresholds({"MALLOC_TRIM_THRESHOLD_": str(1 << 30)}) is False
    assert fix_heap_thresholds({"MALLOC_MMAP_THRESHOLD_": "131072"}) is False
