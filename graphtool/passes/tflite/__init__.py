"""Transforms on TFLite models: one module per transform, named as users type it."""
