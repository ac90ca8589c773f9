"""invdesign: inverse design of nanoscale electronic devices on a differentiable NEGF engine."""

__version__ = "0.1.0"
