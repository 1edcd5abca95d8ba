"""Compatibility rule tables (JSON) shipped with graphtool; sources in schemas/compat/."""
