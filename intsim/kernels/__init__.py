"""intsim.kernels: numerics with no engine objects (layer 1).

hadamard.py (block Walsh-Hadamard transforms), quant.py (max-scaled integer
quantizers, nearest and stochastic rounding), intmm.py (exact integer matmuls
into tiled low-bit accumulators, with the overflow audit), floatacc.py
(matmuls into float accumulators that round every add: naive, pairwise and
Kahan orders, tiles and an outer format, with the swamping audit), luq.py
(LUQ's SAWB and logarithmic quantizers), im2col.py (convolution unfolding).
Their fast paths are the Numba kernels in
_fwht.py, _quant.py, _mm.py, _floatacc.py and _rng.py (NumPy's PCG64 stream inside
kernels); each has a plain NumPy reference that the tests compare bit for
bit. threads.py sets the thread pools, jitcache.py reports compilations,
malloc.py glibc's heap thresholds; runtime.py is the entry points' process
setup (thread wait policies, the Numba cache folder, the heap thresholds) and
loads no NumPy.
"""
