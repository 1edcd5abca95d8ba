"""graphtool's fuzz harness: mutation campaigns against the readers, the transform-string
parser and (once it exists) the calibration loader.

    python fuzz/run.py --target all --inputs 10000 --seconds 600 --seed 1

Every input must end as a valid Graph (that validates, inspects, writes and reads back
to the same bytes) or as a GraphtoolError that names the file and where; anything else,
and any input that takes too long or too much memory, is a failure saved under
tests/fuzz_corpus/<target>/ and replayed by tests/test_fuzz_corpus.py.
"""
