"""Per-target operator compatibility checkers behind graphtool.check; rules are data (rules.py)."""
