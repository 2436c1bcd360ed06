"""Pure operations over checkpoint data: plans, comparisons and rules. No printing, no argv."""
