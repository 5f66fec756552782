"""`surge convert`: a plan written from what users did (a browser's HAR recording, a curl command)."""
