//! Text formats: aclImdb folders, line-per-class files, CSV/TSV/JSONL; decoding and tokenising.
