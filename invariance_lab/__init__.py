"""invariance_lab: how does a CNN become invariant to translation? Measured, not argued."""

__version__ = "0.1.0"
