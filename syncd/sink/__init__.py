"""Applying to a secondary: the :class:`Operation` unit and batched idempotent upserts.

May import: ``syncd.surreal`` and the basics.
"""
