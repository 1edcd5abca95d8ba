"""Python module generated from schemas/graphtool_graphdef.proto (`make proto`)."""
