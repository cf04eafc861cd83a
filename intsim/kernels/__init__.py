"""intsim.kernels: numerics with no engine objects (layer 1).

hadamard.py (block Walsh-Hadamard transforms), quant.py (max-scaled integer
quantizers, nearest and stochastic rounding), intmm.py (exact integer matmuls
into tiled low-bit accumulators, with the overflow audit), luq.py (LUQ's SAWB
and logarithmic quantizers). Their fast paths are the Numba kernels in
_fwht.py, _quant.py, _mm.py and _rng.py (NumPy's PCG64 stream inside
kernels); each has a plain NumPy reference that the tests compare bit for
bit. threads.py sets the thread pools, jitcache.py the compile cache.
"""
