"""Five small stand-ins of the seeds' systems (issue 10): user models, data factories and tasks.

Deterministic and tiny (8-16 px, a few dozen samples), imported by the recipes as `standins.*:factory`
with tests/lab on sys.path.
"""
