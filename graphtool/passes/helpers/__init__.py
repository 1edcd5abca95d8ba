"""What several transforms share: matchers, folding kernels, batch-norm arithmetic, skip
bookkeeping. Nothing here registers a transform."""
