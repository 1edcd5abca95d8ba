"""Transforms on GraphDefs: one module per transform, named as users type it."""
