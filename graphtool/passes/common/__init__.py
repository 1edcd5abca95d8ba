"""Transforms where one function serves GraphDefs and TFLite models alike."""
