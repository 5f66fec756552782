"""Reports, all made from the result dict (the result file)."""
