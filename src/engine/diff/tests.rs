//! Unit tests of the diff, one resource kind at a time.
