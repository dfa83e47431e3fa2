"""Local development helpers: the template-driven AWS emulator and the synthetic data generator.

Not used by any Lambda; they import moto only when called.
"""
