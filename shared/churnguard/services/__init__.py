"""Use cases: one function per thing the platform does, taking primitives plus the ports it needs.

Services are typed against the small protocols in ``churnguard.services.ports``; the real adapters
(``churnguard.adapters``) are composed in ``churnguard.bootstrap``, fakes in unit tests.
"""
