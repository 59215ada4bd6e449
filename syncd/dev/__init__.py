"""The test and demo endpoint (the embedded engine on 127.0.0.1), its process driver, the demo.

A test and demo endpoint only; production runs ``surreal start``.
May import: ``syncd.tools``, ``syncd.service`` and everything below them.
"""
