"""Business logic: keys, enrollments, collections, training, match, identify, spoof checks.

Everything here is synchronous and framework-free; the API layer decides which thread runs it.
"""
