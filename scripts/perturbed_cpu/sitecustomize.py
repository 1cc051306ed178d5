"""Dropout masks drawn as another CPU would draw them, for `make test CPU=perturbed`.

PyTorch's CPU dropout fills its masks with `bernoulli_`, whose kernel draws from MKL on Intel CPUs and
from PyTorch's own generator elsewhere (pytorch#84030): the same seed gives different masks, so an
output that depends on a dropout mask is one that only some CPUs reproduce. The other perturbations
(ATEN_CPU_CAPABILITY, MKL_CBWR, OMP_NUM_THREADS) do not touch this; this module does. Python runs it
at start-up when its folder is on PYTHONPATH (the Makefile puts it there in perturbed mode), in the
test process and in every kernel and subprocess the tests start, and it replaces the CPU kernel of
`bernoulli_(p)` by a third way of drawing: uniform numbers from the same generator, compared with p.
"""

import warnings

import torch

with warnings.catch_warnings():
    # PyTorch warns that a registered kernel is overridden: that is the point here.
    warnings.simplefilter("ignore", UserWarning)
    _ATEN = torch.library.Library("aten", "IMPL")

    def _bernoulli_from_uniform(self, p=0.5, *, generator=None):
        keep = torch.rand(self.shape, generator=generator) < p
        return self.copy_(keep)

    _ATEN.impl("bernoulli_.float", _bernoulli_from_uniform, "CPU")
